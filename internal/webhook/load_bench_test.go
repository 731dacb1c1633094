package webhook_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
	"github.com/kitewatch/kitewatch/internal/ingest"
	"github.com/kitewatch/kitewatch/internal/integration"
	"github.com/kitewatch/kitewatch/internal/poller"
	"github.com/kitewatch/kitewatch/internal/secrets"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/store/sqlite"
	"github.com/kitewatch/kitewatch/internal/tasks"
	"github.com/kitewatch/kitewatch/internal/webhook"
)

// benchEnabled gates the measurements: they take tens of seconds and
// print figures for docs/benchmarks.md instead of asserting on time.
func benchEnabled(t *testing.T) {
	t.Helper()
	if os.Getenv("KITEWATCH_BENCH") == "" {
		t.Skip("set KITEWATCH_BENCH=1 to run the detection measurements")
	}
}

// simBody returns a build.finished body the simulator sends, for a failed
// build with one job: a realistic size and shape.
func simBody(t *testing.T) []byte {
	t.Helper()
	var mu sync.Mutex
	var body []byte
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		if r.Header.Get("X-Buildkite-Event") == "build.finished" {
			body = b
		}
		mu.Unlock()
	}))
	defer rec.Close()
	sim := bksim.New(bksim.Demo())
	defer sim.Close()
	if _, err := sim.AddWebhook(bksim.WebhookConfig{URL: rec.URL, Token: "t", Mode: "signature"}); err != nil {
		t.Fatal(err)
	}
	ref, err := sim.StartBuild(bksim.StartSpec{Pipeline: "acme/api", Branch: "main", Outcome: "failed"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sim.FinishBuild(ref.ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := sim.WaitWebhooks(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if body == nil {
		t.Fatal("the simulator sent no build.finished")
	}
	return body
}

// loadResult is one handler's measurement.
type loadResult struct {
	name          string
	requests      int
	elapsed       time.Duration
	p50, p99, max time.Duration
	latencies     []time.Duration
}

// add merges another round of the same handler into r.
func (r loadResult) add(o loadResult) loadResult {
	all := slices.Concat(r.latencies, o.latencies)
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(float64(len(all))*p))] }
	return loadResult{name: o.name, requests: len(all), elapsed: r.elapsed + o.elapsed, p50: pct(0.50), p99: pct(0.99),
		max: all[len(all)-1], latencies: all}
}

func (r loadResult) throughput() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// runLoad sends perConn signed deliveries on each of conns keep-alive
// connections to url and records each request's latency. Bodies differ
// by build number so none is a duplicate.
func runLoad(t *testing.T, name, url, secret string, body []byte, conns, perConn, offset int) loadResult {
	t.Helper()
	number := []byte(`"number":`)
	at := bytes.Index(body, number)
	if at < 0 {
		t.Fatal("body has no build number")
	}
	end := at + len(number) + bytes.IndexAny(body[at+len(number):], ",}")
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	lat := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	var failed sync.Once
	start := time.Now()
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat[c] = make([]time.Duration, 0, perConn)
			for i := range perConn {
				n := offset + c*perConn + i + 1
				b := slices.Concat(body[:at+len(number)], []byte(strconv.Itoa(n)), body[end:])
				req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Buildkite-Event", "build.finished")
				req.Header.Set("X-Buildkite-Request", fmt.Sprintf("%s-%d", name, n))
				req.Header.Set("X-Buildkite-Signature", bksim.Sign(secret, time.Now().Unix(), b))
				t0 := time.Now()
				res, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
				lat[c] = append(lat[c], time.Since(t0))
				if err != nil || res.StatusCode != http.StatusAccepted {
					failed.Do(func() { t.Errorf("%s: request %d: %v %v", name, n, err, res) })
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	return loadResult{}.add(loadResult{name: name, elapsed: elapsed, latencies: slices.Concat(lat...)})
}

// serve runs h on a real http.Server on a loopback port.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func openBenchDB(t *testing.T) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), sqlite.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// intake is a kitewatch webhook endpoint on a real server; with workers,
// the processing tasks run (and compete for the single writer) during the load.
func intake(t *testing.T, workers bool) (url, secret string) {
	t.Helper()
	ctx := t.Context()
	db := openBenchDB(t)
	q := tasks.New(db, slog.New(slog.DiscardHandler))
	key := make([]byte, secrets.KeySize)
	_, _ = rand.Read(key)
	lk, err := secrets.NewLocalKeeper(key)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secrets.NewKeyring(secrets.NamedKeeper{ID: "k1", Keeper: lk})
	if err != nil {
		t.Fatal(err)
	}
	org, err := db.CreateOrg(ctx, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	base := serve(t, mux)
	svc := webhook.New(webhook.Options{DB: db, Keys: keys, Queue: q, Ingester: ingest.New(db, q), PublicURL: base})
	mux.Handle("POST "+webhook.PathPrefix+"{endpoint_id}", svc)
	if workers {
		svc.Register(q)
		if err := q.Init(tasks.Options{PollInterval: 100 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		if err := q.Start(context.WithoutCancel(ctx)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = q.Stop(context.Background()) })
	} else if err := q.Init(tasks.Options{InsertOnly: true}); err != nil {
		t.Fatal(err)
	}
	setup, err := svc.Configure(ctx, org.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	return setup.URL, setup.Token
}

// minimal is the baseline: read the body, insert it into SQLite (same
// settings: WAL, synchronous=FULL, one writer connection), answer 202.
func minimal(t *testing.T) string {
	t.Helper()
	db := openBenchDB(t)
	if _, err := db.Writer().Exec(`CREATE TABLE bench_deliveries (id INTEGER PRIMARY KEY, body BLOB NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhook.MaxBody))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if _, err := db.Writer().ExecContext(r.Context(), `INSERT INTO bench_deliveries (body) VALUES ($1)`, body); err != nil {
			http.Error(w, "store", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})) + "/minimal"
}

// TestWebhookLoad measures webhook intake against the minimal handler at
// 4 keep-alive connections and prints a table for docs/benchmarks.md:
//
//	KITEWATCH_BENCH=1 go test -run TestWebhookLoad -v -count=1 ./internal/webhook/
func TestWebhookLoad(t *testing.T) {
	benchEnabled(t)
	const conns = 4
	perConn := 2000
	if v, err := strconv.Atoi(os.Getenv("KITEWATCH_BENCH_N")); err == nil && v > 0 {
		perConn = v
	}
	body := simBody(t)
	type target struct {
		name        string
		url, secret string
	}
	minURL := minimal(t)
	idleURL, idleSecret := intake(t, false)
	busyURL, busySecret := intake(t, true)
	targets := []target{
		{"minimal handler (read body, INSERT)", minURL, "unused"},
		{"kitewatch intake (tasks not worked)", idleURL, idleSecret},
		{"kitewatch intake + process_webhook workers", busyURL, busySecret},
	}
	// Rounds alternate the handlers so that load from elsewhere on the
	// machine affects them alike.
	const rounds = 4
	results := make([]loadResult, len(targets))
	for _, tg := range targets {
		runLoad(t, "warmup", tg.url, tg.secret, body, conns, 50, 10_000_000) // connections, caches, page cache
	}
	for round := range rounds {
		for i, tg := range targets {
			results[i] = results[i].add(runLoad(t, tg.name, tg.url, tg.secret, body, conns, perConn/rounds, round*perConn))
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%d connections × %d requests (%d alternating rounds), body %d bytes, %s %s/%s, %d CPUs\n", conns, perConn, rounds, len(body),
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	fmt.Fprintf(&sb, "| handler | requests/s | vs minimal | p50 | p99 | max |\n|---|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		fmt.Fprintf(&sb, "| %s | %.0f | %.2f | %s | %s | %s |\n", r.name, r.throughput(), r.throughput()/results[0].throughput(),
			r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), r.max.Round(100*time.Microsecond))
	}
	t.Log(sb.String())
}

// TestPollerCallsPerBuild measures the Buildkite API calls the poller makes
// per detected build, counted in the simulator's request log:
//
//	KITEWATCH_BENCH=1 go test -run TestPollerCallsPerBuild -v -count=1 ./internal/webhook/
func TestPollerCallsPerBuild(t *testing.T) {
	benchEnabled(t)
	ctx := context.Background()
	// Real time: ingest stamps job syncs with the database's clock. The
	// limits are high so that the budget never shapes the figures.
	sim := bksim.New(bksim.Demo(), bksim.WithRateLimits(100000, 100000))
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	db := openBenchDB(t)
	key := make([]byte, secrets.KeySize)
	_, _ = rand.Read(key)
	lk, _ := secrets.NewLocalKeeper(key)
	keys, _ := secrets.NewKeyring(secrets.NamedKeeper{ID: "k1", Keeper: lk})
	org, err := db.CreateOrg(ctx, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	integ := integration.New(integration.Options{DB: db, Keys: keys, BaseURL: srv.URL, HTTPClient: srv.Client(),
		Logger: slog.New(slog.DiscardHandler)})
	if _, _, err := integ.Connect(ctx, org, integration.Actor{Email: "a@acme.test"}, secrets.NewSecret(bksim.DemoTokenValue("good")), "acme"); err != nil {
		t.Fatal(err)
	}
	q := tasks.New(db, slog.New(slog.DiscardHandler))
	if err := q.Init(tasks.Options{InsertOnly: true}); err != nil {
		t.Fatal(err)
	}
	p := poller.New(poller.Options{DB: db, Clients: integ, Ingester: ingest.New(db, q), Lookback: 24 * time.Hour})
	// pollUntilCaughtUp polls until a run leaves nothing to fetch, and
	// returns the runs and the simulator's request count.
	pollUntilCaughtUp := func() (runs, calls int) {
		t.Helper()
		sim.ResetRequests()
		for runs < 20 {
			rep, err := p.RunOnce(ctx, org.ID)
			if err != nil {
				t.Fatal(err)
			}
			runs++
			need, err := db.BuildsNeedingJobs(ctx, org.ID, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Complete && len(need) == 0 {
				break
			}
		}
		return runs, len(sim.Requests())
	}
	startBuilds := func(n, failed int) {
		t.Helper()
		pipelines := []string{"acme/api", "acme/web", "acme/shop"}
		for i := range n {
			outcome := "passed"
			if i < failed {
				outcome = "failed"
			}
			ref, err := sim.StartBuild(bksim.StartSpec{Pipeline: pipelines[i%3], Branch: fmt.Sprintf("b-%d", i), Outcome: outcome})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sim.FinishBuild(ref.ID, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	pollUntilCaughtUp() // the first poll's catch-up of the demo builds
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n| builds finished since the last poll | of which failed | poll runs | API calls | calls per build |\n|---:|---:|---:|---:|---:|\n")
	for _, sc := range []struct{ builds, failed int }{{0, 0}, {1, 0}, {1, 1}, {100, 0}, {100, 30}, {100, 100}} {
		before, _ := db.CountBuilds(ctx, org.ID)
		startBuilds(sc.builds, sc.failed)
		runs, calls := pollUntilCaughtUp()
		after, _ := db.CountBuilds(ctx, org.ID)
		if after-before != sc.builds {
			t.Fatalf("%d builds detected, want %d", after-before, sc.builds)
		}
		perBuild := "–"
		if sc.builds > 0 {
			perBuild = fmt.Sprintf("%.2f", float64(calls)/float64(sc.builds))
		}
		fmt.Fprintf(&sb, "| %d | %d | %d | %d | %s |\n", sc.builds, sc.failed, runs, calls, perBuild)
	}
	t.Log(sb.String())
}
