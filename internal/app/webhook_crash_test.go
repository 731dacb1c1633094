package app_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/store/sqlite"
)

// capturedDelivery is one webhook the simulator emitted, replayed later
// against the real server with a fresh signature.
type capturedDelivery struct {
	requestID string
	event     string
	body      []byte
	pipeline  string
	number    int
	state     string
}

// captureDeliveries runs builds on a private simulator whose webhooks go to
// a recorder, and returns every delivery in emission order: realistic
// build.* and job.* bodies for builds that only exist in those bodies.
func captureDeliveries(t *testing.T, builds int) []capturedDelivery {
	t.Helper()
	var mu sync.Mutex
	var got []capturedDelivery
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p struct {
			Build struct {
				Number int    `json:"number"`
				State  string `json:"state"`
			} `json:"build"`
			Pipeline struct {
				Slug string `json:"slug"`
			} `json:"pipeline"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("simulator sent a non-JSON webhook: %v", err)
		}
		mu.Lock()
		got = append(got, capturedDelivery{requestID: r.Header.Get("X-Buildkite-Request"), event: r.Header.Get("X-Buildkite-Event"),
			body: body, pipeline: p.Pipeline.Slug, number: p.Build.Number, state: p.Build.State})
		mu.Unlock()
	}))
	defer rec.Close()
	sim := bksim.New(bksim.Demo(), bksim.WithWebhookRetry(1, 10*time.Millisecond))
	defer sim.Close()
	if _, err := sim.AddWebhook(bksim.WebhookConfig{URL: rec.URL, Token: "capture", Mode: "signature"}); err != nil {
		t.Fatal(err)
	}
	pipelines := []string{"acme/api", "acme/web", "acme/shop"}
	for i := range builds {
		outcome := "passed"
		if i%3 == 0 {
			outcome = "failed"
		}
		ref, err := sim.StartBuild(bksim.StartSpec{Pipeline: pipelines[i%len(pipelines)], Branch: fmt.Sprintf("crash-%d", i), Outcome: outcome})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sim.FinishBuild(ref.ID, ""); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sim.WaitWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, d := range got {
		if d.requestID == "" || d.pipeline == "" || d.number == 0 || !strings.Contains(d.event, ".") {
			t.Fatalf("captured delivery without request id, pipeline or build: %+v", d.event)
		}
	}
	return got
}

// startServeProcess runs `kitewatch serve` as a child process with extra flags.
func startServeProcess(t *testing.T, bin, dataDir, addr string, flags ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--data-dir", dataDir, "--addr", addr}, flags...)...)
	cmd.Stdout, cmd.Stderr = &syncBuffer{}, &syncBuffer{}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitReady(t, "http://"+addr)
	return cmd
}

// deliver posts one signed delivery; it returns the status and body, or an
// error when the server is unreachable.
func deliver(c *http.Client, url, secret string, d capturedDelivery) (int, string, error) {
	req, err := http.NewRequest("POST", url, strings.NewReader(string(d.body)))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Buildkite-Event", d.event)
	req.Header.Set("X-Buildkite-Request", d.requestID)
	req.Header.Set("X-Buildkite-Signature", bksim.Sign(secret, time.Now().Unix(), d.body))
	res, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, "", err
	}
	return res.StatusCode, string(b), nil
}

// TestSIGKILLDuringWebhookLoad kills the server binary with SIGKILL while
// four connections deliver signed webhooks, restarts it, redelivers
// everything (as Buildkite does for deliveries that got no answer) and
// checks, in the database, that every acknowledged delivery is stored once,
// answered as a duplicate on redelivery, processed exactly once, and that
// each build exists once in its final state with one analysis task per
// failure.
func TestSIGKILLDuringWebhookLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	deliveries := captureDeliveries(t, 150)
	final := map[string]string{} // pipeline#number → state of its build.finished
	for _, d := range deliveries {
		if d.event == "build.finished" {
			final[fmt.Sprintf("%s#%d", d.pipeline, d.number)] = d.state
		}
	}
	if len(final) != 150 {
		t.Fatalf("captured %d finished builds, want 150", len(final))
	}

	api := bksim.New(bksim.Demo(), bksim.WithRateLimits(100000, 100000))
	apiSrv := httptest.NewServer(api)
	defer apiSrv.Close()
	defer api.Close()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	flags := []string{"--key-url", "base64key://" + base64.StdEncoding.EncodeToString(key),
		"--buildkite-api-url", apiSrv.URL, "--poll-interval", "1h"}
	dir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	proc := startServeProcess(t, bin, dir, addr, flags...)
	admin, _, _ := seed(t, dir)
	orgAPI := base + "/api/v1/orgs/acme"
	if r := do(t, "POST", orgAPI+"/integrations/buildkite", admin,
		strings.NewReader(fmt.Sprintf(`{"token":%q,"organization":"acme"}`, bksim.DemoTokenValue("good")))); r.Status != 200 && r.Status != 201 {
		t.Fatalf("connect: %d %s", r.Status, r.Body)
	}
	r := do(t, "POST", orgAPI+"/integrations/buildkite/webhook", admin, strings.NewReader(`{}`))
	var setup struct{ URL, Token string }
	if err := json.Unmarshal([]byte(r.Body), &setup); err != nil || r.Status != 201 || !strings.HasPrefix(setup.URL, base+"/webhooks/buildkite/") {
		t.Fatalf("configure webhook: %d %s", r.Status, r.Body)
	}

	// Four keep-alive connections deliver in parallel until the kill.
	var acked sync.Map // request id → true
	var nAcked atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for {
				i := int(next.Add(1) - 1)
				if i >= len(deliveries) {
					return
				}
				status, body, err := deliver(c, setup.URL, setup.Token, deliveries[i])
				if err != nil {
					return // the server is gone
				}
				if status/100 != 2 {
					t.Errorf("delivery %d (%s): %d %s", i, deliveries[i].event, status, body)
					continue
				}
				acked.Store(deliveries[i].requestID, true)
				nAcked.Add(1)
			}
		}()
	}
	killAt := int64(len(deliveries) / 3)
	for i := 0; nAcked.Load() < killAt && i < 2000; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = proc.Wait()
	wg.Wait()
	ackedBefore := nAcked.Load()
	if ackedBefore == 0 || ackedBefore == int64(len(deliveries)) {
		t.Fatalf("%d of %d deliveries acknowledged before the kill: the kill was not during the load", ackedBefore, len(deliveries))
	}

	// Restart and redeliver everything: acknowledged ones must be duplicates.
	startServeProcess(t, bin, dir, addr, flags...)
	c := &http.Client{Timeout: 10 * time.Second}
	redelivered := 0
	for _, d := range deliveries {
		status, body, err := deliver(c, setup.URL, setup.Token, d)
		if err != nil {
			t.Fatal(err)
		}
		_, wasAcked := acked.Load(d.requestID)
		switch {
		case wasAcked && (status != 200 || !strings.Contains(body, "duplicate")):
			t.Errorf("acknowledged delivery %s redelivered after restart: %d %s, want 200 duplicate", d.requestID, status, body)
		case status != 200 && status != 202:
			t.Errorf("redelivery %s: %d %s", d.requestID, status, body)
		case status == 202:
			redelivered++
		}
	}

	db, err := sqlite.Open(context.Background(), filepath.Join(dir, sqlite.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sqlDB := db.Writer()
	count := func(query string, args ...any) int {
		t.Helper()
		var n int
		if err := sqlDB.QueryRow(query, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}
	deadline := time.Now().Add(2 * time.Minute)
	for count(`SELECT COUNT(*) FROM webhook_deliveries WHERE processed_at IS NULL`) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries still unprocessed after restart", count(`SELECT COUNT(*) FROM webhook_deliveries WHERE processed_at IS NULL`))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Every delivery is stored exactly once, acknowledged ones included.
	if n := count(`SELECT COUNT(*) FROM webhook_deliveries`); n != len(deliveries) {
		t.Errorf("%d stored deliveries, want %d", n, len(deliveries))
	}
	if n := count(`SELECT COUNT(*) FROM (SELECT request_id FROM webhook_deliveries GROUP BY request_id HAVING COUNT(*) > 1)`); n != 0 {
		t.Errorf("%d request ids stored more than once", n)
	}
	missing := 0
	acked.Range(func(k, _ any) bool {
		if count(`SELECT COUNT(*) FROM webhook_deliveries WHERE request_id = $1 AND processed_at IS NOT NULL`, k) != 1 {
			missing++
		}
		return true
	})
	if missing > 0 {
		t.Errorf("%d acknowledged deliveries missing or unprocessed after restart", missing)
	}
	// Each delivery is covered by exactly one processing task (a group
	// commit enqueues one task for the deliveries it stored).
	const covered = `SELECT json_extract(args, '$.delivery_id') AS d FROM river_job
		WHERE kind = 'process_webhook' AND json_extract(args, '$.delivery_id') IS NOT NULL
		UNION ALL SELECT j.value FROM river_job, json_each(river_job.args, '$.delivery_ids') AS j WHERE kind = 'process_webhook'`
	if n := count(`SELECT COUNT(*) FROM (SELECT d FROM (` + covered + `) GROUP BY d HAVING COUNT(*) > 1)`); n != 0 {
		t.Errorf("%d deliveries are covered by more than one processing task", n)
	}
	if n := count(`SELECT COUNT(*) FROM (` + covered + `)`); n != len(deliveries) {
		t.Errorf("processing tasks cover %d deliveries, want %d", n, len(deliveries))
	}

	// Each build exists once, in the state of its build.finished, and each
	// failed build has one analysis task for its one failure episode.
	failed := 0
	for k, want := range final {
		pipeline, numStr, _ := strings.Cut(k, "#")
		num, _ := strconv.Atoi(numStr)
		var n int
		var state string
		var attempt int
		err := sqlDB.QueryRow(`SELECT COUNT(*), MAX(state), MAX(attempt) FROM builds WHERE pipeline = $1 AND number = $2`, pipeline, num).
			Scan(&n, &state, &attempt)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 || state != want {
			t.Errorf("build %s: %d rows, state %q, want 1 row in %q", k, n, state, want)
		}
		if want == "failed" {
			failed++
			tasks := count(`SELECT COUNT(*) FROM river_job WHERE kind = 'analyze_build' AND json_extract(args, '$.pipeline') = $1
				AND json_extract(args, '$.number') = $2`, pipeline, num)
			if tasks != 1 || attempt != 1 {
				t.Errorf("failed build %s: %d analyze_build tasks, attempt %d; want 1 and 1", k, tasks, attempt)
			}
		}
	}
	var integrity string
	if err := sqlDB.QueryRow("PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check = %q, %v", integrity, err)
	}
	// Tasks that were running at the kill stay "running" until River rescues
	// them; the delivery sweep processed their deliveries at restart.
	stuck := count(`SELECT COUNT(*) FROM river_job WHERE kind = 'process_webhook' AND state = 'running'`)
	t.Logf("%d deliveries (%d builds, %d failed); %d acknowledged before SIGKILL, all present and processed once; "+
		"%d newly accepted on redelivery; %d processing tasks died running with the process (the sweep took their deliveries over)",
		len(deliveries), len(final), failed, ackedBefore, redelivered, stuck)
}
