package analysis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk"
	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/store"
)

// Clients gives the Buildkite client of an organization and its Buildkite
// organization slug; release must be called when done. The app adapts the
// integration service to it.
type Clients interface {
	Client(ctx context.Context, orgID int64) (src Source, bkOrg string, release func(), err error)
}

// DefaultBranchWindow is how far back "also failing on the default branch"
// looks.
const DefaultBranchWindow = 7 * 24 * time.Hour

// Worker runs analyze_build tasks.
type Worker struct {
	DB      *store.DB
	Clients Clients
	Logger  *slog.Logger
	Options Options
}

// Run analyses attempt of the build org/pipeline#number and stores the
// result, replacing any earlier analysis of that attempt. It returns nil
// when there is nothing (more) to do, a *RetryLaterError when the
// Buildkite budget is low, and other errors when a retry may help.
func (w *Worker) Run(ctx context.Context, orgID int64, pipeline string, number, attempt int) error {
	opts := w.Options.withDefaults()
	logger := w.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("org_id", orgID, "pipeline", pipeline, "build", number, "attempt", attempt)
	b, err := w.DB.BuildByNumber(ctx, orgID, pipeline, number)
	if errors.Is(err, ci.ErrNotFound) {
		logger.InfoContext(ctx, "analysis skipped: build not stored")
		return nil
	}
	if err != nil {
		return err
	}
	if b.Attempt > attempt {
		logger.InfoContext(ctx, "analysis skipped: a newer attempt exists", "latest_attempt", b.Attempt)
		return nil
	}
	started := opts.Now()
	save := func(a ci.Analysis) error {
		a.OrgID, a.BuildID, a.Attempt, a.StartedAt = orgID, b.ID, attempt, started
		_, err := w.DB.SaveAnalysis(ctx, a)
		return err
	}
	finished := func() *time.Time { t := opts.Now(); return &t }
	if b.Superseded {
		return save(ci.Analysis{Status: ci.AnalysisSkipped, FinishedAt: finished(),
			Error: "superseded by a newer build of the same branch or pull request"})
	}
	if b.State == ci.BuildPassed || b.State == ci.BuildCanceled {
		return save(ci.Analysis{Status: ci.AnalysisSkipped, FinishedAt: finished(), Error: "the build is " + b.State})
	}
	if err := save(ci.Analysis{Status: ci.AnalysisRunning}); err != nil {
		return err
	}
	src, bkOrg, release, err := w.Clients.Client(ctx, orgID)
	if err != nil {
		if errors.Is(err, ci.ErrConflict) || errors.Is(err, ci.ErrNotFound) {
			return save(ci.Analysis{Status: ci.AnalysisFailed, FinishedAt: finished(), Error: "Buildkite is not connected"})
		}
		return err
	}
	// The client holds the organization's token gate until released: a
	// deferred release keeps a panic (which River recovers) from holding
	// it for ever and blocking token rotation.
	rep, err := func() (Report, error) {
		defer release()
		return AnalyzeBuild(ctx, src, bkOrg, pipeline, number, opts)
	}()
	var later *RetryLaterError
	switch {
	case errors.As(err, &later):
		logger.InfoContext(ctx, "analysis postponed", "until", later.Until, "reason", later.Reason)
		if serr := save(ci.Analysis{Status: ci.AnalysisRunning, Error: "waiting for the Buildkite rate limit: " +
			later.Until.UTC().Format(time.RFC3339)}); serr != nil {
			return serr
		}
		return later
	case err != nil && (bk.IsForbidden(err) || bk.IsNotFound(err) || bk.IsUnauthorized(err)):
		// Retrying will not help until the token changes.
		logger.WarnContext(ctx, "analysis failed", "error", err)
		return save(ci.Analysis{Status: ci.AnalysisFailed, FinishedAt: finished(), Error: safeReason(err)})
	case err != nil:
		if serr := save(ci.Analysis{Status: ci.AnalysisFailed, FinishedAt: finished(), Error: safeReason(err)}); serr != nil {
			return errors.Join(err, serr)
		}
		return err
	}

	if len(rep.Findings) > 0 {
		branch := "main"
		if p, err := w.DB.Pipeline(ctx, orgID, pipeline); err == nil && p.DefaultBranch != "" {
			branch = p.DefaultBranch
		}
		failing, err := w.DB.FailingFingerprints(ctx, orgID, pipeline, branch, started.Add(-DefaultBranchWindow), b.ID)
		if err != nil {
			return err
		}
		MarkAlsoFailing(rep.Findings, failing)
	}
	a := ci.Analysis{Status: ci.AnalysisDone, FinishedAt: finished(), Skipped: rep.Skipped, Jobs: rep.Jobs,
		Findings: rep.Findings}
	if err := save(a); err != nil {
		return fmt.Errorf("store analysis of %s#%d: %w", pipeline, number, err)
	}
	logger.InfoContext(ctx, "build analysed", "jobs", len(rep.Jobs), "findings", len(rep.Findings),
		"skipped", len(rep.Skipped), "took", opts.Now().Sub(started))
	return nil
}

// safeReason renders an analysis error for users. Buildkite client errors
// never contain the token.
func safeReason(err error) string {
	var ae *bk.APIError
	switch {
	case errors.As(err, &ae) && ae.MissingScope() != "":
		return ae.MissingScope() + " missing: the build could not be read"
	case bk.IsUnauthorized(err):
		return "the Buildkite token was rejected"
	case bk.IsNotFound(err):
		return "the build is not visible to the Buildkite token"
	}
	s := err.Error()
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
