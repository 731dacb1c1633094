// Package tasks runs kitewatch's background work on River, on either
// database: tasks are enqueued in the same transaction as the data they are
// about (EnqueueTx), periodic tasks run only on the elected leader so two
// replicas never run the same singleton at once, and Stop drains running
// tasks before returning.
//
// River is pre-1.0, so the rest of kitewatch sees only this small seam.
package tasks

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/kitewatch/kitewatch/internal/store"
)

// Queue is the task queue.
type Queue struct {
	db       *store.DB
	workers  *river.Workers
	periodic []*river.PeriodicJob
	client   *river.Client[*sql.Tx]
	logger   *slog.Logger
}

// New returns a queue on db. Register workers and periodic tasks, then Start.
func New(db *store.DB, logger *slog.Logger) *Queue {
	return &Queue{db: db, workers: river.NewWorkers(), logger: logger}
}

// Register adds a worker for one kind of task. It must be called before Start.
func Register[T river.JobArgs](q *Queue, w river.Worker[T]) {
	river.AddWorker(q.workers, w)
}

// Every schedules a periodic task. It runs on the leader replica only.
func (q *Queue) Every(interval time.Duration, id string, args func() river.JobArgs, runOnStart bool) {
	q.periodic = append(q.periodic, river.NewPeriodicJob(
		river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) { return args(), nil },
		&river.PeriodicJobOpts{ID: id, RunOnStart: runOnStart},
	))
}

// Options tunes the client.
type Options struct {
	// Workers is how many tasks run at once (default 4).
	Workers int
	// PollInterval is how often idle workers look for new tasks (default 1s,
	// at least 100ms: smaller values crash River).
	PollInterval time.Duration
	// Insert-only clients enqueue but never run tasks (CLI commands).
	InsertOnly bool
}

// Init creates the River client. Start runs it.
func (q *Queue) Init(opts Options) error {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.PollInterval < 100*time.Millisecond {
		opts.PollInterval = time.Second
	}
	cfg := &river.Config{
		Logger:               q.logger.With("component", "tasks"),
		FetchPollInterval:    opts.PollInterval,
		FetchCooldown:        100 * time.Millisecond,
		JobTimeout:           10 * time.Minute,
		RescueStuckJobsAfter: 30 * time.Minute,
	}
	if !opts.InsertOnly {
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: opts.Workers}}
		cfg.Workers = q.workers
		cfg.PeriodicJobs = q.periodic
		// Tasks may be enqueued before the package that works them is
		// wired (analyze_build is enqueued by ingest; its worker belongs to
		// the analysis package), so insertion must not require a worker.
		cfg.SkipUnknownJobCheck = true
	}
	client, err := river.NewClient(q.db.Dialect().RiverDriver(q.db.Writer()), cfg)
	if err != nil {
		return fmt.Errorf("create task queue client: %w", err)
	}
	q.client = client
	return nil
}

// Start runs workers and the periodic scheduler until Stop.
func (q *Queue) Start(ctx context.Context) error {
	if err := q.client.Start(ctx); err != nil {
		return fmt.Errorf("start task queue: %w", err)
	}
	return nil
}

// Stop stops fetching new tasks and waits for running ones to finish, until
// ctx is done; then it cancels what is still running.
func (q *Queue) Stop(ctx context.Context) error {
	if q.client == nil {
		return nil
	}
	if err := q.client.Stop(ctx); err != nil {
		if err := q.client.StopAndCancel(context.Background()); err != nil {
			return fmt.Errorf("stop task queue: %w", err)
		}
	}
	return nil
}

// Unique marks a task unique on its arguments among pending, running and
// completed tasks, so a repeated enqueue of the same natural identity is a no-op.
var Unique = &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled, rivertype.JobStateCompleted,
}}}

// UniqueWhilePending marks a task unique on its arguments only while one is
// waiting or running: a request to run it again is dropped until it ran.
var UniqueWhilePending = &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled,
}}}

// EnqueueTx enqueues a task inside tx: it exists if and only if tx commits.
// It reports whether a new task was inserted (false when a unique task of the
// same identity already existed).
func (q *Queue) EnqueueTx(ctx context.Context, tx *store.Tx, args river.JobArgs, opts *river.InsertOpts) (bool, error) {
	res, err := q.client.InsertTx(ctx, tx.SQL(), args, opts)
	if err != nil {
		return false, fmt.Errorf("enqueue %s task: %w", args.Kind(), err)
	}
	return !res.UniqueSkippedAsDuplicate, nil
}

// Enqueue enqueues a task outside any transaction.
func (q *Queue) Enqueue(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error {
	if _, err := q.client.Insert(ctx, args, opts); err != nil {
		return fmt.Errorf("enqueue %s task: %w", args.Kind(), err)
	}
	return nil
}

// Subscribe returns a channel of finished tasks of the given kinds, for tests
// and metrics. Call the returned function to unsubscribe.
func (q *Queue) Subscribe() (<-chan *river.Event, func()) {
	return q.client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed)
}

// funcWorker adapts a plain function to a River worker.
type funcWorker[T river.JobArgs] struct {
	river.WorkerDefaults[T]
	fn func(ctx context.Context, args T) error
}

func (w *funcWorker[T]) Work(ctx context.Context, job *river.Job[T]) error {
	return w.fn(ctx, job.Args)
}

// Handle registers fn as the worker for tasks of args type T, so that
// feature packages need no River types beyond their argument structs.
func Handle[T river.JobArgs](q *Queue, fn func(ctx context.Context, args T) error) {
	river.AddWorker(q.workers, &funcWorker[T]{fn: fn})
}
