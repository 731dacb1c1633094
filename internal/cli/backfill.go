package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/kitewatch/kitewatch/internal/config"
	"github.com/kitewatch/kitewatch/internal/ingest"
	"github.com/kitewatch/kitewatch/internal/integration"
	"github.com/kitewatch/kitewatch/internal/poller"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/tasks"
	"github.com/kitewatch/kitewatch/internal/web"
)

// bkBackfillCmd is "kitewatch buildkite backfill --org acme --since 7d": it
// runs against the database directly, within the poller's request budget,
// and resumes an interrupted backfill of the same start.
func bkBackfillCmd(e *env) *cobra.Command {
	s := &settings{}
	var org, since, apiURL string
	cmd := &cobra.Command{
		Use:   "backfill --org SLUG --since 7d",
		Short: "Fetch past builds of the organization from Buildkite (resumable, within the rate-limit budget)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if org == "" {
				return fmt.Errorf("--org is required")
			}
			return withDB(cmd, s, func(ctx context.Context, db *store.DB, c config.Config) error {
				if apiURL != "" {
					c.BuildkiteAPIURL = apiURL
				}
				return backfill(ctx, e, db, c, org, since)
			})
		},
	}
	s.bindDatabase(cmd.Flags())
	cmd.Flags().StringVar(&org, "org", os.Getenv("KITEWATCH_ORG"), "kitewatch organization slug [KITEWATCH_ORG]")
	cmd.Flags().StringVar(&since, "since", "7d", `how far back: a duration ("7d", "36h") or an RFC 3339 time, at most 90 days`)
	cmd.Flags().StringVar(&apiURL, "buildkite-api-url", os.Getenv("KITEWATCH_BUILDKITE_API_URL"), "Buildkite REST API base URL (default https://api.buildkite.com) [KITEWATCH_BUILDKITE_API_URL]")
	return cmd
}

func backfill(ctx context.Context, e *env, db *store.DB, c config.Config, slug, sinceArg string) error {
	o, err := db.OrgBySlug(ctx, slug)
	if err != nil {
		return fmt.Errorf("find organization %q: %w", slug, err)
	}
	since, err := web.ParseSince(sinceArg, time.Now())
	if err != nil {
		return err
	}
	keys, err := openKeyring(ctx, c, db)
	if err != nil {
		return err
	}
	defer keys.Close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	q := tasks.New(db, logger)
	if err := q.Init(tasks.Options{InsertOnly: true}); err != nil {
		return err
	}
	integ := integration.New(integration.Options{DB: db, Keys: keys, BaseURL: c.BuildkiteAPIURL, Logger: logger})
	p := poller.New(poller.Options{DB: db, Clients: integ, Ingester: ingest.New(db, q), Logger: logger})

	var progress func(poller.Progress)
	var finish func()
	if f, ok := e.stdout.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		bars := mpb.NewWithContext(ctx, mpb.WithOutput(f))
		var budget int
		bar := bars.AddBar(0,
			mpb.PrependDecorators(decor.Name("pages "), decor.CountersNoUnit("%d/%d")),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return fmt.Sprintf(" budget %d/min", budget) }),
				decor.Name(" ETA "), decor.EwmaETA(decor.ET_STYLE_GO, 30)))
		start, last := time.Now(), 0
		progress = func(pr poller.Progress) {
			budget = pr.Budget
			total := int64(max(pr.LastPage, pr.Pages+1))
			if pr.Done {
				total = int64(pr.Pages)
			}
			bar.SetTotal(total, false)
			bar.EwmaIncrBy(pr.Pages-last, time.Since(start))
			last, start = pr.Pages, time.Now()
		}
		finish = func() { bar.SetTotal(-1, true); bars.Wait() }
	} else {
		progress = func(pr poller.Progress) {}
		finish = func() {}
	}
	pr, err := p.Backfill(ctx, o.ID, since, progress)
	finish()
	if err != nil {
		return fmt.Errorf("backfill %s (progress saved: run the same command to resume): %w", slug, err)
	}
	resumed := ""
	if pr.Resumed {
		resumed = " (resumed)"
	}
	fmt.Fprintf(e.stdout, "Backfill of %s since %s done%s: %d pages, %d builds stored, %d failed builds' jobs fetched.\n",
		slug, since.UTC().Format(time.RFC3339), resumed, pr.Pages, pr.Builds, pr.Details)
	return nil
}
