package poller_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/ingest"
	"github.com/kitewatch/kitewatch/internal/integration"
	"github.com/kitewatch/kitewatch/internal/poller"
	"github.com/kitewatch/kitewatch/internal/secrets"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/store/sqlite"
	"github.com/kitewatch/kitewatch/internal/tasks"
)

// fakeClock is a settable clock shared by the simulator and the poller.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	sim   *bksim.Server
	db    *store.DB
	org   ci.Org
	clock *fakeClock
	p     *poller.Poller
	integ *integration.Service
}

func newFixture(t *testing.T, orgLimit int, o poller.Options) *fixture {
	t.Helper()
	ctx := context.Background()
	clock := &fakeClock{t: time.Now()}
	sim := bksim.New(bksim.Demo(), bksim.WithClock(clock.Now), bksim.WithRateLimits(orgLimit, 1000))
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), sqlite.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, secrets.KeySize)
	rand.Read(key)
	lk, _ := secrets.NewLocalKeeper(key)
	keys, _ := secrets.NewKeyring(secrets.NamedKeeper{ID: "k1", Keeper: lk})
	org, err := db.CreateOrg(ctx, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	integ := integration.New(integration.Options{DB: db, Keys: keys, BaseURL: srv.URL, HTTPClient: srv.Client(),
		Logger: slog.New(slog.DiscardHandler), LockWait: 5 * time.Second})
	if _, _, err := integ.Connect(ctx, org, integration.Actor{Email: "a@acme.test"}, secrets.NewSecret(bksim.DemoTokenValue("good")), "acme"); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Minute) // a fresh rate-limit window after verification
	sim.ResetRequests()
	q := tasks.New(db, slog.New(slog.DiscardHandler))
	if err := q.Init(tasks.Options{InsertOnly: true}); err != nil {
		t.Fatal(err)
	}
	o.DB, o.Clients, o.Ingester, o.Now = db, integ, ingest.New(db, q), clock.Now
	if o.Lookback == 0 {
		o.Lookback = 24 * time.Hour
	}
	if o.Sleep == nil {
		o.Sleep = func(ctx context.Context, d time.Duration) error { clock.Add(d); return ctx.Err() }
	}
	return &fixture{sim: sim, db: db, org: org, clock: clock, p: poller.New(o), integ: integ}
}

// maxPerWindow returns the most requests the simulator saw in any 60-second
// window starting at a request.
func (f *fixture) maxPerWindow() int {
	reqs := f.sim.Requests()
	most := 0
	for i := range reqs {
		n := 0
		for j := i; j < len(reqs) && reqs[j].Time.Sub(reqs[i].Time) < time.Minute; j++ {
			n++
		}
		most = max(most, n)
	}
	return most
}

func TestRunOnceCatchesUpWithoutWebhooks(t *testing.T) {
	f := newFixture(t, 200, poller.Options{})
	ctx := context.Background()
	rep, err := f.p.RunOnce(ctx, f.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := f.db.CountBuilds(ctx, f.org.ID)
	if n != 11 || !rep.Complete {
		t.Fatalf("first run stored %d builds (report %+v), want the 11 acme builds of the last day", n, rep)
	}
	for _, r := range f.sim.Requests() {
		if strings.Contains(r.Path, "/builds") && !strings.Contains(r.Path, "/pipelines/") && !strings.Contains(r.Query, "exclude_jobs=true") {
			t.Fatalf("list without exclude_jobs: %s?%s", r.Path, r.Query)
		}
	}
	b, err := f.db.BuildByNumber(ctx, f.org.ID, "api", 129)
	if err != nil {
		t.Fatal(err)
	}
	jobs, _ := f.db.Jobs(ctx, b.ID)
	if b.State != ci.BuildFailed || b.RepoKey != "github.com/acme/api" || len(jobs) == 0 || b.JobsSynced == nil {
		t.Fatalf("api#129 = %+v with %d jobs", b, len(jobs))
	}
	// One list page per scan, one pipelines page, one detail per failed build.
	if rep.Calls != 1+2+7 {
		t.Fatalf("first run made %d calls, want 10", rep.Calls)
	}

	// A build started and failed with no webhook configured: the next run
	// finds it, and fetches only its details.
	f.sim.ResetRequests()
	ref, err := f.sim.StartBuild(bksim.StartSpec{Pipeline: "acme/shop", Branch: "main", Outcome: "failed"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.sim.FinishBuild(ref.ID, ""); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Minute)
	rep, err = f.p.RunOnce(ctx, f.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.db.BuildByNumber(ctx, f.org.ID, "shop", ref.Number)
	if err != nil || got.State != ci.BuildFailed || got.Attempt != 1 {
		t.Fatalf("new build = %+v, %v", got, err)
	}
	if rep.Calls != 3 {
		t.Fatalf("second run made %d calls (%+v), want 2 lists + 1 detail", rep.Calls, f.sim.Requests())
	}
	st, _ := f.db.PollState(ctx, f.org.ID)
	if st.LastSuccessAt == nil || st.Failures != 0 || st.Created.Cursor == nil {
		t.Fatalf("poll state = %+v", st)
	}
}

func TestBudgetNeverExceeded(t *testing.T) {
	// Organization limit 8 per minute: the poller may use 4.
	f := newFixture(t, 8, poller.Options{})
	ctx := context.Background()
	var runs int
	for runs = 1; runs <= 20; runs++ {
		rep, err := f.p.RunOnce(ctx, f.org.ID)
		if err == nil {
			break
		}
		if !errors.Is(err, poller.ErrBudgetExhausted) {
			t.Fatalf("run %d: %v", runs, err)
		}
		if rep.Calls > 4 {
			t.Fatalf("run %d made %d calls", runs, rep.Calls)
		}
		// A second run in the same window makes no call.
		before := len(f.sim.Requests())
		if _, err := f.p.RunOnce(ctx, f.org.ID); !errors.Is(err, poller.ErrBudgetExhausted) {
			t.Fatalf("run in an exhausted window: %v", err)
		}
		if len(f.sim.Requests()) != before {
			t.Fatal("a run in an exhausted window called Buildkite")
		}
		f.clock.Add(61 * time.Second)
	}
	if runs < 3 || runs > 20 {
		t.Fatalf("finished after %d runs", runs)
	}
	if n, _ := f.db.CountBuilds(ctx, f.org.ID); n != 11 {
		t.Fatalf("stored %d builds, want 11", n)
	}
	if most := f.maxPerWindow(); most > 4 {
		t.Fatalf("%d requests in one minute, budget 4", most)
	}
	for _, r := range f.sim.Requests() {
		if r.Status == 429 {
			t.Fatalf("the poller hit the rate limit: %+v", r)
		}
	}
}

func TestFaultsBreakerAndRecovery(t *testing.T) {
	f := newFixture(t, 20, poller.Options{BreakerThreshold: 3, BreakerCooldown: time.Minute})
	ctx := context.Background()
	if _, err := f.sim.AddFault(bksim.Fault{Org: "acme", Kind: bksim.FaultStatus, Status: 502}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := f.p.RunOnce(ctx, f.org.ID); err == nil || errors.Is(err, poller.ErrBreakerOpen) {
			t.Fatalf("run %d under a 5xx storm: %v", i, err)
		}
		if i < 3 {
			f.clock.Add(61 * time.Second)
		}
	}
	st, _ := f.db.PollState(ctx, f.org.ID)
	if st.Failures != 3 || st.BreakerUntil == nil || st.LastError == "" {
		t.Fatalf("after 3 failed runs: %+v", st)
	}
	before := len(f.sim.Requests())
	if _, err := f.p.RunOnce(ctx, f.org.ID); !errors.Is(err, poller.ErrBreakerOpen) {
		t.Fatalf("run with the breaker open: %v", err)
	}
	if len(f.sim.Requests()) != before {
		t.Fatal("a run with the breaker open called Buildkite")
	}
	// Each run retried twice: 3 calls a run, never more than the budget of 10.
	if most := f.maxPerWindow(); most > 10 {
		t.Fatalf("%d requests in one minute under faults, budget 10", most)
	}

	// A rate limit: the reset time is honoured.
	f.sim.ClearFaults()
	f.clock.Add(30 * time.Minute)
	if _, err := f.sim.AddFault(bksim.Fault{Org: "acme", Kind: bksim.FaultRateLimit, Times: 1}); err != nil {
		t.Fatal(err)
	}
	var rl interface{ Error() string }
	if _, err := f.p.RunOnce(ctx, f.org.ID); err == nil {
		t.Fatal("run answered 429 succeeded")
	} else {
		rl = err
	}
	st, _ = f.db.PollState(ctx, f.org.ID)
	if st.BackoffUntil == nil || !st.BackoffUntil.After(f.clock.Now()) || st.Failures != 3 {
		t.Fatalf("after 429 (%v): %+v", rl, st)
	}
	before = len(f.sim.Requests())
	if _, err := f.p.RunOnce(ctx, f.org.ID); !errors.Is(err, poller.ErrBudgetExhausted) || len(f.sim.Requests()) != before {
		t.Fatalf("run before the reset: %v", err)
	}

	// Recovery once the fault is gone.
	f.clock.Add(2 * time.Minute)
	if _, err := f.p.RunOnce(ctx, f.org.ID); err != nil {
		t.Fatalf("run after the faults cleared: %v", err)
	}
	st, _ = f.db.PollState(ctx, f.org.ID)
	if st.Failures != 0 || st.BreakerUntil != nil || st.LastSuccessAt == nil {
		t.Fatalf("after recovery: %+v", st)
	}
	if n, _ := f.db.CountBuilds(ctx, f.org.ID); n != 11 {
		t.Fatalf("stored %d builds after recovery", n)
	}
}

func TestBackfillResumes(t *testing.T) {
	f := newFixture(t, 200, poller.Options{})
	ctx := context.Background()
	cctx, cancel := context.WithCancel(ctx)
	var seen []poller.Progress
	_, err := f.p.Backfill(cctx, f.org.ID, f.clock.Now().Add(-7*24*time.Hour), func(p poller.Progress) {
		seen = append(seen, p)
		cancel() // interrupted after the first page
	})
	if err == nil && len(seen) == 0 {
		t.Fatal("no progress reported")
	}
	pr, err := f.p.Backfill(ctx, f.org.ID, f.clock.Now().Add(-7*24*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !pr.Done || pr.Builds < 11 {
		t.Fatalf("backfill = %+v", pr)
	}
	if n, _ := f.db.CountBuilds(ctx, f.org.ID); n != 11 {
		t.Fatalf("stored %d builds, want every acme build (11)", n)
	}
	if need, _ := f.db.BuildsNeedingJobs(ctx, f.org.ID, 100); len(need) != 0 {
		t.Fatalf("%d failed builds without jobs after backfill", len(need))
	}
}

// TestBackfillDoesNotHoldTheTokenWhileWaiting rotates the token while a
// backfill waits out a rate-limit window: the rotation goes through at
// once (the backfill holds the organization's client only during each
// call) and every later backfill request uses the new token.
func TestBackfillDoesNotHoldTheTokenWhileWaiting(t *testing.T) {
	var f *fixture
	rotated := false
	rotatedAt := 0 // requests the simulator had seen when the rotation ended
	f = newFixture(t, 10, poller.Options{Sleep: func(ctx context.Context, d time.Duration) error {
		f.clock.Add(d)
		if !rotated {
			rotated = true
			f.clock.Add(time.Minute) // room in the window for the verification calls
			if _, _, err := f.integ.Rotate(ctx, f.org, integration.Actor{Email: "a@acme.test"},
				secrets.NewSecret(bksim.DemoTokenValue("expiring-soon")), false); err != nil {
				t.Errorf("rotate during the backfill's wait: %v", err)
			}
			rotatedAt = len(f.sim.Requests())
		}
		return ctx.Err()
	}})
	pr, err := f.p.Backfill(context.Background(), f.org.ID, f.clock.Now().Add(-7*24*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !pr.Done || !rotated {
		t.Fatalf("backfill %+v, rotated %v: the backfill never waited", pr, rotated)
	}
	after := f.sim.Requests()[rotatedAt:]
	for _, r := range after {
		if r.Token != "expiring-soon" {
			t.Errorf("request after the rotation with token %q: %s %s", r.Token, r.Method, r.Path)
		}
	}
	if len(after) == 0 {
		t.Fatal("no backfill request after the rotation")
	}
}
