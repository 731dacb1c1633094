package app

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"

	"github.com/kitewatch/kitewatch/internal/analysis"
	"github.com/kitewatch/kitewatch/internal/ingest"
	"github.com/kitewatch/kitewatch/internal/integration"
	"github.com/kitewatch/kitewatch/internal/tasks"
)

// wireAnalysis registers the failure-analysis worker (analyze_build tasks)
// and its routes.
func (a *App) wireAnalysis() {
	w := &analysis.Worker{DB: a.db, Clients: analysisClients{a}, Logger: a.logger.With("component", "analysis")}
	tasks.Handle(a.queue, func(ctx context.Context, args ingest.AnalyzeBuildArgs) error {
		err := w.Run(ctx, args.OrgID, args.Pipeline, args.Number, args.Attempt)
		var later *analysis.RetryLaterError
		if errors.As(err, &later) {
			// Snoozing keeps the task's unique slot and does not use up its
			// retries: the budget resets at a known time.
			return river.JobSnooze(max(time.Until(later.Until), time.Second))
		}
		return err
	})
	a.web.AnalysisRoutes()
}

// analysisClients adapts the integration service to analysis.Clients: the
// organization's Buildkite client and its Buildkite organization slug.
type analysisClients struct{ a *App }

func (c analysisClients) Client(ctx context.Context, orgID int64) (analysis.Source, string, func(), error) {
	in, err := c.a.db.Integration(ctx, orgID, integration.Kind)
	if err != nil {
		return nil, "", nil, err
	}
	client, release, err := c.a.integrations.Client(ctx, orgID)
	if err != nil {
		return nil, "", nil, err
	}
	return client, in.ExtOrgSlug, release, nil
}
