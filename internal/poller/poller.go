// Package poller is build detection's source of truth: per organization it
// lists builds created and finished since durable cursors (jobs excluded),
// fetches details only for failed builds whose jobs are not yet known, and
// feeds everything to ingest. It keeps within a request budget (by default
// half of the organization's REST limit, read from the RateLimit-* headers),
// backs off with jitter on 429 and 5xx honouring the reset time, and has a
// per-organization circuit breaker so one broken organization never slows
// the others.
//
// RunOnce polls one organization synchronously (tests, the CLI); RunAll is
// the periodic task, run by River on the leader replica only.
package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kitewatch/kitewatch/internal/bk"
	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/ingest"
	"github.com/kitewatch/kitewatch/internal/store"
)

// ClientSource hands out Buildkite clients for organizations
// (*integration.Service).
type ClientSource interface {
	Client(ctx context.Context, orgID int64) (*bk.Client, func(), error)
}

// Options configures a Poller. Zero values take the defaults.
type Options struct {
	DB       *store.DB
	Clients  ClientSource
	Ingester *ingest.Ingester
	Logger   *slog.Logger
	// Registry receives the poller metrics; nil for none.
	Registry prometheus.Registerer
	Now      func() time.Time
	// BudgetFraction is the share of the per-minute limit the poller may use
	// (default 0.5). The limit is the tighter of the organization's and the
	// token user's windows (see budget.observe).
	BudgetFraction float64
	// DefaultLimit is assumed until a response reports the limit (default 200).
	DefaultLimit int
	// Reserve is the share of the limit always left to other tools: no call
	// is made while fewer requests remain (default 0.1).
	Reserve float64
	// Lookback is how far back the first poll of an organization looks
	// (default 1h); use a backfill for more.
	Lookback time.Duration
	// Overlap re-reads this much before each cursor, for clock skew and
	// builds that appear late (default 2m).
	Overlap time.Duration
	// DetailsPerRun bounds how many failed builds' jobs one run fetches
	// (default 20).
	DetailsPerRun int
	// PipelineRefresh is how often the pipeline list is re-read (default 1h).
	PipelineRefresh time.Duration
	// Retries is how many times a 5xx or connection failure is retried
	// within a run, after a jittered backoff (default 2).
	Retries int
	// RetryBase is the first retry backoff (default 500ms), doubled each time.
	RetryBase time.Duration
	// BreakerThreshold consecutive failed runs open the breaker (default 3)
	// for BreakerCooldown (default 1m), doubled per further failure up to
	// 30m.
	BreakerThreshold int
	BreakerCooldown  time.Duration
	// Concurrency bounds how many organizations RunAll polls at once (default 4).
	Concurrency int
	// Sleep waits (for tests); default a timer that honours ctx.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Poller polls Buildkite organizations.
type Poller struct {
	o       Options
	mu      sync.Mutex
	budgets map[int64]*budget
	orgLock map[int64]*sync.Mutex
	m       metrics
}

type metrics struct {
	calls   *prometheus.CounterVec
	builds  *prometheus.CounterVec
	lag     *prometheus.GaugeVec
	budget  *prometheus.GaugeVec
	breaker *prometheus.GaugeVec
}

// New returns a Poller.
func New(o Options) *Poller {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.BudgetFraction <= 0 || o.BudgetFraction > 1 {
		o.BudgetFraction = 0.5
	}
	if o.DefaultLimit <= 0 {
		o.DefaultLimit = 200
	}
	if o.Reserve < 0 || o.Reserve >= 1 {
		o.Reserve = 0.1
	} else if o.Reserve == 0 {
		o.Reserve = 0.1
	}
	if o.Lookback <= 0 {
		o.Lookback = time.Hour
	}
	if o.Overlap <= 0 {
		o.Overlap = 2 * time.Minute
	}
	if o.DetailsPerRun <= 0 {
		o.DetailsPerRun = 20
	}
	if o.PipelineRefresh <= 0 {
		o.PipelineRefresh = time.Hour
	}
	if o.Retries < 0 {
		o.Retries = 0
	} else if o.Retries == 0 {
		o.Retries = 2
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 500 * time.Millisecond
	}
	if o.BreakerThreshold <= 0 {
		o.BreakerThreshold = 3
	}
	if o.BreakerCooldown <= 0 {
		o.BreakerCooldown = time.Minute
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	p := &Poller{o: o, budgets: map[int64]*budget{}, orgLock: map[int64]*sync.Mutex{}}
	p.m = metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kitewatch_poller_api_calls_total",
			Help: "Buildkite API calls made by the poller, by organization id and outcome."}, []string{"org", "outcome"}),
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kitewatch_poller_builds_total",
			Help: "Build observations the poller fed to ingest, by organization id."}, []string{"org"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kitewatch_poller_lag_seconds",
			Help: "Seconds between now and the start of the organization's last complete poll."}, []string{"org"}),
		budget: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kitewatch_poller_budget_remaining",
			Help: "Requests the poller may still make in the current rate-limit window, by organization id."}, []string{"org"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kitewatch_poller_breaker_open",
			Help: "1 while the organization's circuit breaker is open."}, []string{"org"}),
	}
	if o.Registry != nil {
		for _, c := range []prometheus.Collector{p.m.calls, p.m.builds, p.m.lag, p.m.budget, p.m.breaker} {
			_ = o.Registry.Register(c)
		}
	}
	return p
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// budget counts the poller's own calls for one organization in the current
// 60-second window.
type budget struct {
	windowStart time.Time
	used        int
	limit       int // organization limit per window
	remaining   int // organization-wide remaining, -1 when unknown
	reset       time.Time
}

// ErrBudgetExhausted stops a run that would exceed the request budget.
var ErrBudgetExhausted = errors.New("poller request budget for this minute is used up")

// ErrBreakerOpen is returned by RunOnce while the organization's breaker is open.
var ErrBreakerOpen = errors.New("poller circuit breaker is open for this organization")

func (p *Poller) budgetFor(orgID int64) *budget {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.budgets[orgID]
	if b == nil {
		b = &budget{limit: p.o.DefaultLimit, remaining: -1}
		p.budgets[orgID] = b
	}
	return b
}

func (p *Poller) lockOrg(orgID int64) func() {
	p.mu.Lock()
	l := p.orgLock[orgID]
	if l == nil {
		l = &sync.Mutex{}
		p.orgLock[orgID] = l
	}
	p.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// cap is the poller's share of the current rate-limit window.
func (p *Poller) cap(b *budget) int { return max(1, int(float64(b.limit)*p.o.BudgetFraction)) }

// take reserves one call, or reports when the next window starts.
func (p *Poller) take(b *budget) (ok bool, wait time.Time) {
	now := p.o.Now()
	if now.Sub(b.windowStart) >= time.Minute || (!b.reset.IsZero() && !now.Before(b.reset) && b.reset.After(b.windowStart)) {
		b.windowStart, b.used, b.remaining = now, 0, -1
		b.reset = time.Time{}
	}
	next := b.windowStart.Add(time.Minute)
	if !b.reset.IsZero() && b.reset.Before(next) {
		next = b.reset
	}
	if b.used >= p.cap(b) {
		return false, next
	}
	if b.remaining >= 0 && float64(b.remaining) <= float64(b.limit)*p.o.Reserve {
		return false, next
	}
	b.used++
	if b.remaining > 0 {
		b.remaining--
	}
	return true, time.Time{}
}

// observe records the budget a response reported. Buildkite limits both
// the organization (200/min) and each token's user (50/min), and the user's
// window is shared with everything else kitewatch does with the token
// (verification, analysis), so the budget follows the tighter of the two:
// the smaller limit and the smaller remainder. Reset times are wall clock
// readings; they are carried over to the poller's clock as durations.
func (b *budget) observe(s bk.RateLimitSnapshot, now time.Time) {
	if s.SeenAt.IsZero() {
		return
	}
	seen := false
	for _, sc := range []*bk.RateLimitScope{s.Org, s.User} {
		if sc == nil {
			continue
		}
		if !seen || sc.Limit < b.limit {
			b.limit = max(1, sc.Limit)
		}
		if !seen || sc.Remaining < b.remaining {
			b.remaining = sc.Remaining
			b.reset = time.Time{}
			if !sc.Reset.IsZero() {
				b.reset = now.Add(time.Until(sc.Reset))
			}
		}
		seen = true
	}
}

// run is one organization's poll in progress.
type run struct {
	p      *Poller
	orgID  int64
	slug   string
	client *bk.Client
	b      *budget
	st     *ci.PollState
	calls  int
	builds int
	// wait, when set, makes a budget shortfall wait for the next window
	// instead of stopping (backfills).
	wait bool
	// forcePipelines re-reads the pipeline list even if it is recent.
	forcePipelines bool
	// acquire, when set, takes the organization's client for each call
	// and releases it right after, instead of client being held for the
	// whole run: a backfill that waits out rate-limit windows must not
	// hold the token, or a rotation would wait for it.
	acquire func(ctx context.Context) (*bk.Client, func(), error)
}

// invoke runs fn with the run's client and records the rate-limit
// headers it saw.
func (r *run) invoke(ctx context.Context, fn func(ctx context.Context) error) error {
	if r.acquire != nil {
		c, release, err := r.acquire(ctx)
		if err != nil {
			return fmt.Errorf("get buildkite client: %w", err)
		}
		defer release()
		r.client = c
	}
	err := fn(ctx)
	p := r.p
	p.mu.Lock()
	r.b.observe(r.client.RateLimit(), p.o.Now())
	p.m.budget.WithLabelValues(strconv.FormatInt(r.orgID, 10)).Set(float64(max(0, p.cap(r.b)-r.b.used)))
	p.mu.Unlock()
	return err
}

// call makes one budgeted API call with retries on 5xx and connection
// failures. A 429 records the reset time and stops.
func (r *run) call(ctx context.Context, fn func(ctx context.Context) error) error {
	p := r.p
	org := strconv.FormatInt(r.orgID, 10)
	for attempt := 0; ; attempt++ {
		p.mu.Lock()
		ok, next := p.take(r.b)
		p.mu.Unlock()
		if !ok {
			if !r.wait {
				return ErrBudgetExhausted
			}
			if err := p.o.Sleep(ctx, max(next.Sub(p.o.Now()), 10*time.Millisecond)+jitter(time.Second)); err != nil {
				return err
			}
			attempt--
			continue
		}
		r.calls++
		r.st.Calls++
		err := r.invoke(ctx, fn)
		var rl *bk.RateLimitError
		var un *bk.UnreachableError
		switch {
		case err == nil:
			p.m.calls.WithLabelValues(org, "ok").Inc()
			return nil
		case errors.As(err, &rl):
			p.m.calls.WithLabelValues(org, "rate_limited").Inc()
			p.mu.Lock()
			reset := p.o.Now().Add(time.Until(rl.Reset))
			r.b.used = p.cap(r.b) // nothing more this window
			r.b.reset = reset
			p.mu.Unlock()
			until := reset.Add(jitter(2 * time.Second))
			r.st.BackoffUntil = &until
			return err
		case errors.As(err, &un) && attempt < p.o.Retries && ctx.Err() == nil:
			p.m.calls.WithLabelValues(org, "error").Inc()
			d := p.o.RetryBase << attempt
			if err := p.o.Sleep(ctx, d/2+jitter(d/2)); err != nil {
				return err
			}
		default:
			p.m.calls.WithLabelValues(org, "error").Inc()
			return err
		}
	}
}

// jitter returns a random duration in [0, d).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)))
}

// Report summarises one run.
type Report struct {
	Calls  int `json:"api_calls"`
	Builds int `json:"builds"`
	// Complete is false when the budget cut the run short; the next run
	// resumes where it stopped.
	Complete bool `json:"complete"`
}

// RunOnce polls one organization now. It returns ErrBreakerOpen without any
// call while the breaker is open, and ErrBudgetExhausted (with the progress
// saved) when the budget ran out.
func (p *Poller) RunOnce(ctx context.Context, orgID int64) (Report, error) {
	return p.runOnce(ctx, orgID, false)
}

// RunNow is RunOnce for a poll someone asked for (the API's "poll now"): it
// also re-reads the pipeline list, however recently it was read, because
// whoever asks has often just changed pipeline settings in Buildkite and
// expects the diagnostics to show the change.
func (p *Poller) RunNow(ctx context.Context, orgID int64) (Report, error) {
	return p.runOnce(ctx, orgID, true)
}

func (p *Poller) runOnce(ctx context.Context, orgID int64, forcePipelines bool) (Report, error) {
	defer p.lockOrg(orgID)()
	st, err := p.o.DB.PollState(ctx, orgID)
	if err != nil {
		return Report{}, err
	}
	now := p.o.Now()
	if st.BreakerUntil != nil && now.Before(*st.BreakerUntil) {
		return Report{}, ErrBreakerOpen
	}
	if st.BackoffUntil != nil && now.Before(*st.BackoffUntil) {
		return Report{}, ErrBudgetExhausted
	}
	org, err := p.o.DB.OrgByID(ctx, orgID)
	if err != nil {
		return Report{}, err
	}
	integ, err := p.o.DB.Integration(ctx, orgID, "buildkite")
	if err != nil {
		return Report{}, err
	}
	r := &run{p: p, orgID: orgID, slug: integ.ExtOrgSlug, b: p.budgetFor(orgID), st: &st, forcePipelines: forcePipelines}
	st.LastRunAt = &now
	rep, runErr := r.poll(ctx)
	p.finish(ctx, org, r, rep, runErr)
	if err := p.o.DB.SavePollState(ctx, st); err != nil {
		return rep, errors.Join(runErr, err)
	}
	return rep, runErr
}

// finish records a run's outcome: success resets the breaker; a failure
// (other than running out of budget) counts towards it.
func (p *Poller) finish(ctx context.Context, org ci.Org, r *run, rep Report, err error) {
	st := r.st
	now := p.o.Now()
	label := strconv.FormatInt(org.ID, 10)
	p.mu.Lock()
	st.BudgetLimit, st.BudgetRemain = p.cap(r.b), max(0, p.cap(r.b)-r.b.used)
	st.OrgLimit, st.OrgRemain = r.b.limit, r.b.remaining
	p.mu.Unlock()
	if st.Created.Cursor != nil {
		st.LagSeconds = now.Sub(*st.Created.Cursor).Seconds()
		p.m.lag.WithLabelValues(label).Set(st.LagSeconds)
	}
	var rl *bk.RateLimitError
	switch {
	case errors.As(err, &rl):
		// Someone used the organization's budget: wait, but the
		// organization is not broken.
		st.LastError, st.LastErrorAt = SafeError(err), &now
	case err == nil || errors.Is(err, ErrBudgetExhausted):
		if err == nil {
			st.LastSuccessAt = &now
			st.BackoffUntil = nil
		}
		st.Failures, st.BreakerUntil, st.LastError, st.LastErrorAt = 0, nil, "", nil
		p.m.breaker.WithLabelValues(label).Set(0)
	default:
		st.Failures++
		st.LastError, st.LastErrorAt = SafeError(err), &now
		if st.Failures >= p.o.BreakerThreshold {
			d := p.o.BreakerCooldown << min(st.Failures-p.o.BreakerThreshold, 5)
			d = min(d, 30*time.Minute)
			until := now.Add(d/2 + jitter(d/2))
			st.BreakerUntil = &until
			p.m.breaker.WithLabelValues(label).Set(1)
		}
		p.o.Logger.WarnContext(ctx, "poll failed", "org", org.Slug, "failures", st.Failures, "error", err)
	}
}

// SafeError is the message stored for diagnostics and shown after Poll now.
// It describes a poll failure for people: the Buildkite error kinds
// in plain words, anything else as its (bounded) message, which the bk
// client guarantees never contains the token.
func SafeError(err error) string {
	var rl *bk.RateLimitError
	switch {
	case errors.As(err, &rl):
		return "rate limited by Buildkite until " + rl.Reset.UTC().Format(time.RFC3339)
	case bk.IsUnauthorized(err):
		return "Buildkite rejected the token (401): it may be revoked or expired"
	case bk.IsForbidden(err):
		return "Buildkite refused access (403): the token may lack read_builds or read_pipelines"
	}
	s := err.Error()
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

func (r *run) poll(ctx context.Context) (Report, error) {
	p := r.p
	client, release, err := p.o.Clients.Client(ctx, r.orgID)
	if err != nil {
		return Report{}, fmt.Errorf("get buildkite client: %w", err)
	}
	defer release()
	r.client = client
	rep := Report{}
	err = r.steps(ctx)
	rep.Calls, rep.Builds, rep.Complete = r.calls, r.builds, err == nil
	p.m.builds.WithLabelValues(strconv.FormatInt(r.orgID, 10)).Add(float64(r.builds))
	return rep, err
}

func (r *run) steps(ctx context.Context) error {
	now := r.p.o.Now()
	if r.forcePipelines || r.st.PipelinesAt == nil || now.Sub(*r.st.PipelinesAt) >= r.p.o.PipelineRefresh {
		if err := r.refreshPipelines(ctx); err != nil {
			return err
		}
	}
	if err := r.scan(ctx, &r.st.Created, false); err != nil {
		return err
	}
	if err := r.scan(ctx, &r.st.Finished, true); err != nil {
		return err
	}
	return r.details(ctx)
}

// refreshPipelines stores every pipeline of the organization.
func (r *run) refreshPipelines(ctx context.Context) error {
	for page := 1; page > 0; {
		var pp bk.PipelinePage
		err := r.call(ctx, func(ctx context.Context) (err error) {
			pp, err = r.client.ListPipelines(ctx, r.slug, page)
			return err
		})
		if err != nil {
			return err
		}
		for _, pj := range pp.Pipelines {
			pl := ingest.MapPipeline(pj.CI())
			pl.OrgID = r.orgID
			if _, err := r.p.o.DB.UpsertPipeline(ctx, pl); err != nil {
				return err
			}
		}
		page = pp.NextPage
	}
	now := r.p.o.Now()
	r.st.PipelinesAt = &now
	return nil
}

// scan lists builds created (or finished) since the cursor, resuming at a
// saved page, and advances the cursor once every page was read.
func (r *run) scan(ctx context.Context, s *ci.ScanState, finished bool) error {
	if s.StartedAt == nil {
		now := r.p.o.Now()
		s.StartedAt, s.Page = &now, 1
		if s.Cursor == nil {
			from := now.Add(-r.p.o.Lookback)
			s.Cursor = &from
		}
	}
	from := s.Cursor.Add(-r.p.o.Overlap)
	for s.Page > 0 {
		opt := bk.BuildListOptions{ExcludeJobs: true, Page: s.Page}
		if finished {
			opt.FinishedFrom = from
		} else {
			opt.CreatedFrom = from
		}
		var page bk.BuildPage
		err := r.call(ctx, func(ctx context.Context) (err error) {
			page, err = r.client.ListBuilds(ctx, r.slug, opt)
			return err
		})
		if err != nil {
			return err
		}
		if err := r.ingest(ctx, page.Builds, ci.SourcePoll); err != nil {
			return err
		}
		s.Page = page.NextPage
		// Save progress so a run cut short resumes at the next page.
		if err := r.p.o.DB.SavePollState(ctx, *r.st); err != nil {
			return err
		}
	}
	s.Cursor, s.StartedAt, s.Page = s.StartedAt, nil, 0
	return nil
}

func (r *run) ingest(ctx context.Context, builds []bk.BuildJSON, source string) error {
	for _, bj := range builds {
		b := bj.CI()
		if b.Pipeline == "" || b.Number <= 0 {
			continue
		}
		u := ingest.Update{Source: source, Build: b}
		if bj.Pipeline != nil {
			pl := bj.Pipeline.CI()
			u.Pipeline = &pl
		}
		if _, err := r.p.o.Ingester.Ingest(ctx, r.orgID, u); err != nil {
			return fmt.Errorf("ingest %s#%d: %w", b.Pipeline, b.Number, err)
		}
		r.builds++
		r.st.BuildsSeen++
	}
	return nil
}

// details fetches the jobs of failed builds that need them.
func (r *run) details(ctx context.Context) error {
	need, err := r.p.o.DB.BuildsNeedingJobs(ctx, r.orgID, r.p.o.DetailsPerRun)
	if err != nil {
		return err
	}
	return r.detailsOf(ctx, need)
}

// detailsOf fetches and ingests the full job lists of builds.
func (r *run) detailsOf(ctx context.Context, need []ci.Build) error {
	for _, b := range need {
		var bj bk.BuildJSON
		err := r.call(ctx, func(ctx context.Context) (err error) {
			bj, err = r.client.GetBuild(ctx, r.slug, b.Pipeline, b.Number)
			return err
		})
		if bk.IsNotFound(err) {
			// The build is gone (pipeline deleted): stop asking.
			now := r.p.o.Now()
			err = r.p.o.DB.InTx(ctx, func(tx *store.Tx) error {
				b.JobsSynced = &now
				_, err := tx.UpdateBuild(ctx, b)
				return err
			})
			if err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		nb := bj.CI()
		nb.Pipeline = b.Pipeline
		if _, err := r.p.o.Ingester.Ingest(ctx, r.orgID, ingest.Update{Source: ci.SourcePoll, Build: nb,
			Jobs: bj.CIJobs(), JobsComplete: true}); err != nil {
			return fmt.Errorf("ingest jobs of %s#%d: %w", b.Pipeline, b.Number, err)
		}
	}
	return nil
}

// RunAll polls every connected Buildkite organization, a few at a time, each
// under its own deadline, so a slow or broken one never holds up the others.
// It returns the first unexpected error after all have run.
func (p *Poller) RunAll(ctx context.Context) error {
	ins, err := p.o.DB.ListIntegrations(ctx, "buildkite")
	if err != nil {
		return err
	}
	sem := make(chan struct{}, p.o.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, in := range ins {
		if in.Status != ci.StatusConnected && in.Status != ci.StatusNeedsAttention {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(orgID int64) {
			defer func() { <-sem; wg.Done() }()
			octx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			_, err := p.RunOnce(octx, orgID)
			if err != nil && !errors.Is(err, ErrBudgetExhausted) && !errors.Is(err, ErrBreakerOpen) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("poll org %d: %w", orgID, err))
				mu.Unlock()
			}
		}(in.OrgID)
	}
	wg.Wait()
	if len(errs) > 0 {
		// Failures are recorded per organization; the periodic task itself
		// succeeds so River does not retry every organization.
		for _, e := range errs {
			p.o.Logger.WarnContext(ctx, "poll", "error", e)
		}
	}
	return nil
}

// PollArgs is the periodic poll task.
type PollArgs struct{}

// Kind is the River task kind.
func (PollArgs) Kind() string { return "poll_buildkite" }
