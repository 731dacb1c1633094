package poller

import (
	"context"
	"fmt"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk"
	"github.com/kitewatch/kitewatch/internal/ci"
)

// Progress reports a backfill's advance.
type Progress struct {
	Pages    int `json:"pages"`
	LastPage int `json:"last_page"` // 0 when unknown
	Builds   int `json:"builds"`
	Details  int `json:"details"`
	// Budget is how many requests the poller may still make this minute.
	Budget  int  `json:"budget_remaining"`
	Resumed bool `json:"resumed"`
	Done    bool `json:"done"`
}

// Backfill fetches every build of the organization created since since,
// page by page within the request budget (waiting for the next rate-limit
// window instead of exceeding it), then the jobs of the failed ones. Its
// progress is saved after every page: calling Backfill again with the same
// since resumes where an interrupted run stopped. progress, if not nil, is
// called after every page.
func (p *Poller) Backfill(ctx context.Context, orgID int64, since time.Time, progress func(Progress)) (Progress, error) {
	defer p.lockOrg(orgID)()
	st, err := p.o.DB.PollState(ctx, orgID)
	if err != nil {
		return Progress{}, err
	}
	integ, err := p.o.DB.Integration(ctx, orgID, "buildkite")
	if err != nil {
		return Progress{}, err
	}
	var pr Progress
	since = since.UTC().Truncate(time.Second)
	bf := st.Backfill
	if bf != nil && !bf.Done && bf.Since.Equal(since) {
		pr.Resumed = true
	} else {
		bf = &ci.BackfillState{Since: since, Until: p.o.Now().UTC().Add(time.Minute).Truncate(time.Second), Page: 1}
	}
	st.Backfill = bf
	pr.Pages, pr.Builds = bf.Pages, bf.Builds
	r := &run{p: p, orgID: orgID, slug: integ.ExtOrgSlug, b: p.budgetFor(orgID), st: &st, wait: true,
		acquire: func(ctx context.Context) (*bk.Client, func(), error) { return p.o.Clients.Client(ctx, orgID) }}
	// Fail early, before any budget is spent, when there is no client.
	if _, release, err := p.o.Clients.Client(ctx, orgID); err != nil {
		return pr, fmt.Errorf("get buildkite client: %w", err)
	} else {
		release()
	}
	report := func() {
		p.mu.Lock()
		pr.Budget = max(0, p.cap(r.b)-r.b.used)
		p.mu.Unlock()
		if progress != nil {
			progress(pr)
		}
	}
	if st.PipelinesAt == nil {
		if err := r.refreshPipelines(ctx); err != nil {
			return pr, err
		}
	}
	for bf.Page > 0 {
		var page bk.BuildPage
		err := r.call(ctx, func(ctx context.Context) (err error) {
			page, err = r.client.ListBuilds(ctx, r.slug, bk.BuildListOptions{ExcludeJobs: true, CreatedFrom: bf.Since,
				CreatedTo: bf.Until, Page: bf.Page})
			return err
		})
		if err != nil {
			_ = p.o.DB.SavePollState(ctx, st)
			return pr, err
		}
		if err := r.ingest(ctx, page.Builds, ci.SourceBackfill); err != nil {
			return pr, err
		}
		bf.Pages++
		bf.Builds += len(page.Builds)
		if page.LastPage > 0 {
			pr.LastPage = page.LastPage
		}
		bf.Page = page.NextPage
		pr.Pages, pr.Builds = bf.Pages, bf.Builds
		if err := p.o.DB.SavePollState(ctx, st); err != nil {
			return pr, err
		}
		report()
	}
	// Jobs of the failed builds, all of them, within the budget.
	for {
		need, err := p.o.DB.BuildsNeedingJobs(ctx, orgID, 50)
		if err != nil {
			return pr, err
		}
		if len(need) == 0 {
			break
		}
		before := r.calls
		if err := r.detailsOf(ctx, need); err != nil {
			_ = p.o.DB.SavePollState(ctx, st)
			return pr, err
		}
		pr.Details += len(need)
		report()
		if r.calls == before {
			break
		}
	}
	bf.Done, pr.Done = true, true
	if err := p.o.DB.SavePollState(ctx, st); err != nil {
		return pr, err
	}
	report()
	return pr, nil
}
