// Package ingest is the one funnel through which builds reach kitewatch:
// webhook deliveries, the poller and backfills all call Apply, so dedupe,
// forward-only state, retry linking, supersede marking and the transactional
// enqueueing of failure analysis exist once.
//
// The row is the truth and the queue is a hint: an analyze_build task is
// enqueued in the same transaction that records a failure, unique on
// (organization, pipeline, build number, attempt), so a repeated webhook or
// an overlapping poll never creates duplicate work.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/tasks"
)

// AnalyzeBuildArgs is the failure-analysis task of one failed attempt of a
// build. Attempt counts how many times the build reached a failure, so a
// retried build that fails again is analysed again.
type AnalyzeBuildArgs struct {
	OrgID    int64  `json:"org_id"`
	Pipeline string `json:"pipeline"`
	Number   int    `json:"number"`
	Attempt  int    `json:"attempt"`
}

// Kind is the River task kind.
func (AnalyzeBuildArgs) Kind() string { return "analyze_build" }

// Enqueuer enqueues a task inside a store transaction (*tasks.Queue).
type Enqueuer interface {
	EnqueueTx(ctx context.Context, tx *store.Tx, args river.JobArgs, opts *river.InsertOpts) (bool, error)
}

// Ingester applies build updates.
type Ingester struct {
	db    *store.DB
	queue Enqueuer
}

// New returns an Ingester writing to db and enqueueing analysis on queue.
func New(db *store.DB, queue Enqueuer) *Ingester { return &Ingester{db: db, queue: queue} }

// Update is one observation of a build from any source.
type Update struct {
	// Source is ci.SourceWebhook, ci.SourcePoll or ci.SourceBackfill.
	Source string
	// Pipeline, when set, is stored (with repository mapping) first.
	Pipeline *ci.Pipeline
	Build    ci.Build
	// Jobs are merged by Buildkite job id; JobsComplete says they are the
	// build's full job list (retried ones included), which marks the build's
	// jobs as synced.
	Jobs         []ci.Job
	JobsComplete bool
}

// Result says what Apply did.
type Result struct {
	Build   ci.Build
	Created bool // the build was new
	Changed bool // the build's state moved forward
	// Analyze is set when an analyze_build task was enqueued (or already
	// existed for this attempt).
	Analyze *AnalyzeBuildArgs
}

// Ingest applies u in its own transaction. A conflict with a concurrent
// insert of the same build is retried once.
func (in *Ingester) Ingest(ctx context.Context, orgID int64, u Update) (Result, error) {
	var res Result
	var err error
	for range 2 {
		err = in.db.InTx(ctx, func(tx *store.Tx) error {
			var e error
			res, e = in.Apply(ctx, tx, orgID, u)
			return e
		})
		if !errors.Is(err, ci.ErrConflict) {
			break
		}
	}
	return res, err
}

// Apply merges u into the stored build inside tx: states only move forward
// (a finished build is only replaced by a later finish, after a retry),
// jobs are upserted with retries linked to their originals, older builds
// of the same branch or pull request are marked superseded, and a failure
// enqueues analysis.
func (in *Ingester) Apply(ctx context.Context, tx *store.Tx, orgID int64, u Update) (Result, error) {
	nb := u.Build
	if nb.Pipeline == "" || nb.Number <= 0 {
		return Result{}, fmt.Errorf("ingest build: %w", ci.Errorf(ci.ErrInvalid, "invalid_build", "a build needs a pipeline and a number"))
	}
	nb.OrgID = orgID
	var pipe *ci.Pipeline
	if u.Pipeline != nil {
		p := MapPipeline(*u.Pipeline)
		p.OrgID = orgID
		if p.Slug == "" {
			p.Slug = nb.Pipeline
		}
		saved, err := tx.UpsertPipeline(ctx, p)
		if err != nil {
			return Result{}, err
		}
		pipe = &saved
	} else if p, err := tx.Pipeline(ctx, orgID, nb.Pipeline); err == nil {
		pipe = &p
	} else if !errors.Is(err, ci.ErrNotFound) {
		return Result{}, err
	}
	if pipe != nil {
		nb.RepoKey, nb.Provider = pipe.RepoKey, pipe.Provider
	}
	if nb.RepoKey == "" && nb.PRRepository != "" {
		nb.RepoKey, _ = NormaliseRepo(nb.PRRepository)
		nb.Provider = ProviderFor("", nb.RepoKey)
	}
	nb.LastSource = u.Source

	var res Result
	old, err := tx.LockBuild(ctx, orgID, nb.Pipeline, nb.Number)
	switch {
	case errors.Is(err, ci.ErrNotFound):
		if isFailure(nb.State) {
			nb.Attempt = 1
		}
		if u.JobsComplete {
			now := tx.Now()
			nb.JobsSynced = &now
		}
		b, err := tx.InsertBuild(ctx, nb)
		if err != nil {
			return Result{}, err
		}
		self, err := tx.MarkSuperseded(ctx, b)
		if err != nil {
			return Result{}, err
		}
		if self {
			b.Superseded = true
			if b, err = tx.UpdateBuild(ctx, b); err != nil {
				return Result{}, err
			}
		}
		res = Result{Build: b, Created: true, Changed: true}
	case err != nil:
		return Result{}, err
	default:
		merged, changed, episode := MergeBuild(old, nb)
		if episode {
			merged.Attempt = old.Attempt + 1
		}
		if u.JobsComplete {
			now := tx.Now()
			merged.JobsSynced = &now
		}
		b, err := tx.UpdateBuild(ctx, merged)
		if err != nil {
			return Result{}, err
		}
		res = Result{Build: b, Changed: changed}
	}

	jobFailed := false
	if len(u.Jobs) > 0 {
		failed, err := mergeJobs(ctx, tx, res.Build.ID, u.Jobs)
		if err != nil {
			return Result{}, err
		}
		jobFailed = failed
	}

	// Analysis: when the build (newly) fails, or a job fails while the build
	// is failing.
	b := res.Build
	if (res.Changed && isFailure(b.State)) || (jobFailed && isFailure(b.State)) {
		if b.Attempt == 0 {
			b.Attempt = 1
			if res.Build, err = tx.UpdateBuild(ctx, b); err != nil {
				return Result{}, err
			}
		}
		args := AnalyzeBuildArgs{OrgID: orgID, Pipeline: b.Pipeline, Number: b.Number, Attempt: b.Attempt}
		if in.queue != nil {
			if _, err := in.queue.EnqueueTx(ctx, tx, args, tasks.Unique); err != nil {
				return Result{}, err
			}
		}
		res.Analyze = &args
	}
	return res, nil
}

func isFailure(state string) bool { return state == ci.BuildFailing || state == ci.BuildFailed }

// MergeBuild merges an observation nb into the stored build old. The state
// moves forward only: a higher-ranked state wins, and among finished states
// only a later finish (after a retry) replaces an earlier one. Descriptive
// fields are filled from nb when it has them. It reports whether the state
// changed and whether the change starts a new failure episode (a new
// analysis attempt).
func MergeBuild(old, nb ci.Build) (merged ci.Build, changed, episode bool) {
	m := old
	fill := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	fill(&m.ExtID, nb.ExtID)
	fill(&m.Branch, nb.Branch)
	fill(&m.Commit, nb.Commit)
	fill(&m.Message, nb.Message)
	fill(&m.Tag, nb.Tag)
	fill(&m.TriggerSource, nb.TriggerSource)
	fill(&m.BaseBranch, nb.BaseBranch)
	fill(&m.PRRepository, nb.PRRepository)
	fill(&m.AuthorName, nb.AuthorName)
	fill(&m.AuthorEmail, nb.AuthorEmail)
	fill(&m.CreatorName, nb.CreatorName)
	fill(&m.CreatorEmail, nb.CreatorEmail)
	fill(&m.RepoKey, nb.RepoKey)
	fill(&m.Provider, nb.Provider)
	fill(&m.WebURL, nb.WebURL)
	fill(&m.LastSource, nb.LastSource)
	if nb.PullRequest != 0 {
		m.PullRequest = nb.PullRequest
	}
	if nb.RebuiltFrom != 0 {
		m.RebuiltFrom = nb.RebuiltFrom
	}
	for _, p := range []struct {
		dst **time.Time
		v   *time.Time
	}{
		{&m.CreatedAt, nb.CreatedAt}, {&m.ScheduledAt, nb.ScheduledAt}, {&m.StartedAt, nb.StartedAt},
	} {
		if *p.dst == nil && p.v != nil {
			*p.dst = p.v
		}
	}
	ro, rn := ci.BuildStateRank(old.State), ci.BuildStateRank(nb.State)
	switch {
	case rn > ro:
		changed = true
	case rn == ro && ci.BuildFinished(nb.State) && nb.FinishedAt != nil &&
		(old.FinishedAt == nil || laterFinish(*old.FinishedAt, *nb.FinishedAt)):
		// A later finish: the build was retried and finished again.
		changed = nb.State != old.State || old.FinishedAt != nil
	}
	if changed {
		m.State, m.Blocked = nb.State, nb.Blocked
		if nb.FinishedAt != nil {
			m.FinishedAt = nb.FinishedAt
		}
		episode = isFailure(nb.State) && !(old.State == ci.BuildFailing && nb.State == ci.BuildFailed)
	} else if rn == ro && ci.BuildFinished(old.State) && old.FinishedAt == nil && nb.FinishedAt != nil {
		m.FinishedAt = nb.FinishedAt
	}
	return m, changed, episode
}

// laterFinish reports whether next is a genuinely later finish than prev.
// Webhook payloads carry whole seconds ("2006-01-02 15:04:05 UTC") while the
// REST API carries milliseconds, so the same finish seen both ways differs
// by under a second; a retried build finishes seconds or more later.
func laterFinish(prev, next time.Time) bool {
	return next.Truncate(time.Second).After(prev.Truncate(time.Second))
}

// mergeJobs upserts jobs of a build: a job's state moves forward only, the
// retried flag only ever turns on, and a retry marks its original retried.
// It reports whether an incoming job is a hard failure.
func mergeJobs(ctx context.Context, tx *store.Tx, buildID int64, incoming []ci.Job) (bool, error) {
	existing, err := tx.JobsForUpdate(ctx, buildID)
	if err != nil {
		return false, err
	}
	byID := make(map[string]ci.Job, len(existing))
	for _, j := range existing {
		byID[j.ExtID] = j
	}
	dirty := map[string]bool{}
	var order []string
	touch := func(id string) {
		if !dirty[id] {
			dirty[id] = true
			order = append(order, id)
		}
	}
	failed := false
	for _, nj := range incoming {
		nj.BuildID = buildID
		if ci.JobFailed(nj.State) && !nj.SoftFailed {
			failed = true
		}
		old, ok := byID[nj.ExtID]
		if ok {
			if ci.JobStateRank(nj.State) < ci.JobStateRank(old.State) {
				// Stale observation: keep the stored state and times.
				nj.State, nj.ExitStatus, nj.StartedAt, nj.FinishedAt = old.State, old.ExitStatus, old.StartedAt, old.FinishedAt
				nj.SoftFailed = old.SoftFailed
			}
			if old.Retried {
				nj.Retried = true
				if nj.RetriedBy == "" {
					nj.RetriedBy = old.RetriedBy
				}
			}
			if nj.RetryOf == "" {
				nj.RetryOf = old.RetryOf
			}
			if nj.RetryType == "" {
				nj.RetryType = old.RetryType
			}
		}
		byID[nj.ExtID] = nj
		touch(nj.ExtID)
	}
	// Link retries to their originals, whichever arrived first.
	all := make([]string, 0, len(existing)+len(incoming))
	for _, j := range existing {
		all = append(all, j.ExtID)
	}
	for _, j := range incoming {
		all = append(all, j.ExtID)
	}
	for _, id := range all {
		j := byID[id]
		if j.RetryOf == "" {
			continue
		}
		orig, ok := byID[j.RetryOf]
		if !ok || (orig.Retried && orig.RetriedBy != "") {
			continue
		}
		orig.Retried = true
		if orig.RetriedBy == "" {
			orig.RetriedBy = id
		}
		byID[j.RetryOf] = orig
		touch(j.RetryOf)
	}
	for _, id := range order {
		if err := tx.SaveJob(ctx, byID[id]); err != nil {
			return false, err
		}
	}
	return failed, nil
}
