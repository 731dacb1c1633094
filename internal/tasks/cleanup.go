package tasks

import (
	"context"

	"github.com/riverqueue/river"

	"github.com/kitewatch/kitewatch/internal/store"
)

// CleanupArgs is the periodic task that deletes expired sessions, setup links
// and invitations.
type CleanupArgs struct{}

// Kind names the task.
func (CleanupArgs) Kind() string { return "cleanup_expired" }

// CleanupWorker deletes expired sessions, setup links and invitations.
type CleanupWorker struct {
	river.WorkerDefaults[CleanupArgs]
	DB *store.DB
}

// Work deletes what has expired.
func (w *CleanupWorker) Work(ctx context.Context, _ *river.Job[CleanupArgs]) error {
	_, err := w.DB.DeleteExpired(ctx, w.DB.Now())
	return err
}
