package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
	"github.com/kitewatch/kitewatch/internal/cli"
	"github.com/kitewatch/kitewatch/internal/config"
)

type detectEnv struct {
	simURL string
	sim    *bksim.Server
	srv    *server
	admin  string
	api    string
}

// startDetection runs the simulator and a server connected to it, with
// the poller's periodic run far away so tests drive it through the API.
func startDetection(t *testing.T) *detectEnv {
	t.Helper()
	sim := bksim.New(bksim.Demo(), bksim.WithWebhookRetry(3, 50*time.Millisecond))
	hs := httptest.NewServer(sim)
	t.Cleanup(func() { hs.Close(); sim.Close() })
	dir := t.TempDir()
	srv := startServer(t, dir, func(c *config.Config) { c.BuildkiteAPIURL = hs.URL; c.PollInterval = time.Hour })
	admin, _, _ := seed(t, dir)
	e := &detectEnv{simURL: hs.URL, sim: sim, srv: srv, admin: admin, api: srv.URL + "/api/v1/orgs/acme"}
	r := do(t, "POST", e.api+"/integrations/buildkite", admin,
		strings.NewReader(fmt.Sprintf(`{"token":%q,"organization":"acme"}`, bksim.DemoTokenValue("good"))))
	if r.Status != 200 && r.Status != 201 {
		t.Fatalf("connect: %d %s", r.Status, r.Body)
	}
	return e
}

type apiBuild struct {
	ID          int64  `json:"id"`
	Pipeline    string `json:"pipeline"`
	Number      int    `json:"number"`
	State       string `json:"state"`
	LastSource  string `json:"last_source"`
	RepoKey     string `json:"repository_key"`
	PullRequest int    `json:"pull_request"`
	Attempt     int    `json:"attempt"`
}

func (e *detectEnv) build(t *testing.T, pipeline string, number int) (apiBuild, bool) {
	t.Helper()
	r := do(t, "GET", fmt.Sprintf("%s/builds?pipeline=%s&limit=200", e.api, pipeline), e.admin, nil)
	if r.Status != 200 {
		t.Fatalf("list builds: %d %s", r.Status, r.Body)
	}
	var body struct{ Builds []apiBuild }
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatal(err)
	}
	for _, b := range body.Builds {
		if b.Number == number {
			return b, true
		}
	}
	return apiBuild{}, false
}

// waitBuild polls the API (bounded) until the build reaches state.
func (e *detectEnv) waitBuild(t *testing.T, pipeline string, number int, state string) apiBuild {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, ok := e.build(t, pipeline, number)
		if ok && b.State == state {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("build %s#%d did not reach %s (last %+v, found %v)", pipeline, number, state, b, ok)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *detectEnv) configureWebhook(t *testing.T, sw bksim.WebhookConfig) int {
	t.Helper()
	r := do(t, "POST", e.api+"/integrations/buildkite/webhook", e.admin, strings.NewReader(`{}`))
	if r.Status != 201 {
		t.Fatalf("configure webhook: %d %s", r.Status, r.Body)
	}
	var setup struct{ URL, Token, Mode string }
	if err := json.Unmarshal([]byte(r.Body), &setup); err != nil {
		t.Fatal(err)
	}
	// The configured public URL is the :0 listen address in tests.
	_, path, _ := strings.Cut(setup.URL, "/webhooks/")
	sw.URL, sw.Token, sw.Mode = e.srv.URL+"/webhooks/"+path, setup.Token, "signature"
	id, err := e.sim.AddWebhook(sw)
	if err != nil {
		t.Fatal(err)
	}
	if st := do(t, "GET", e.api+"/integrations/buildkite/webhook", e.admin, nil); st.Status != 200 || strings.Contains(st.Body, setup.Token) {
		t.Fatalf("webhook status: %d, secret shown again: %v", st.Status, strings.Contains(st.Body, setup.Token))
	}
	return id
}

func TestDetectionEndToEnd(t *testing.T) {
	e := startDetection(t)
	id := e.configureWebhook(t, bksim.WebhookConfig{})

	// A build started through the simulator reaches kitewatch by webhook.
	ref, err := e.sim.StartBuild(bksim.StartSpec{Pipeline: "acme/api", Branch: "main", Outcome: "failed"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.FinishBuild(ref.ID, ""); err != nil {
		t.Fatal(err)
	}
	b := e.waitBuild(t, "api", ref.Number, "failed")
	if b.RepoKey != "github.com/acme/api" || b.Attempt != 1 {
		t.Fatalf("webhook build = %+v", b)
	}
	accepted := 0
	for _, d := range e.sim.Deliveries() {
		if d.Status == 202 {
			accepted++
		}
	}
	ws := do(t, "GET", e.api+"/integrations/buildkite/webhook", e.admin, nil)
	if accepted == 0 || !strings.Contains(ws.Body, `"configured":true`) || strings.Contains(ws.Body, `"deliveries_24h":0`) {
		t.Fatalf("no delivery accepted (%d): %s", accepted, ws.Body)
	}
	// The build may reach "failed" through the poll that connecting started
	// before its jobs arrive (by job.* webhooks or the poll's detail fetch):
	// wait, bounded, for the jobs too.
	var r resp
	for i := 0; ; i++ {
		r = do(t, "GET", fmt.Sprintf("%s/builds/%d", e.api, b.ID), e.admin, nil)
		if r.Status == 200 && strings.Contains(r.Body, `"jobs":[{`) {
			break
		}
		if i == 300 {
			t.Fatalf("build detail never got its jobs: %d %s", r.Status, r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Duplicated and reordered deliveries: processed once, never backwards.
	if err := e.sim.UpdateWebhook(bksim.WebhookConfig{ID: id, URL: e.sim.Webhooks()[0].URL, Token: e.sim.Webhooks()[0].Token,
		Mode: "signature", Duplicate: true, Reorder: true}); err != nil {
		t.Fatal(err)
	}
	ref2, err := e.sim.StartBuild(bksim.StartSpec{Pipeline: "acme/web", Branch: "main", Outcome: "failed"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.FinishBuild(ref2.ID, ""); err != nil {
		t.Fatal(err)
	}
	e.waitBuild(t, "web", ref2.Number, "failed")

	// Dropped webhooks: the poller alone catches up.
	if err := e.sim.UpdateWebhook(bksim.WebhookConfig{ID: id, URL: e.sim.Webhooks()[0].URL, Token: e.sim.Webhooks()[0].Token,
		Mode: "signature", Drop: true}); err != nil {
		t.Fatal(err)
	}
	ref3, err := e.sim.StartBuild(bksim.StartSpec{Pipeline: "acme/shop", Branch: "main", Outcome: "failed"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.FinishBuild(ref3.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.build(t, "shop", ref3.Number); ok {
		t.Fatal("dropped build arrived anyway")
	}
	for range 2 {
		if r := do(t, "POST", e.api+"/integrations/buildkite/poll", e.admin, nil); r.Status != 200 {
			t.Fatalf("poll: %d %s", r.Status, r.Body)
		}
	}
	if b, ok := e.build(t, "shop", ref3.Number); !ok || b.State != "failed" || b.LastSource != "poll" {
		t.Fatalf("poller did not catch up: %+v %v", b, ok)
	}
	if err := e.sim.WaitWebhooks(t.Context()); err != nil {
		t.Fatal(err)
	}

	// Diagnostics: billing has commit statuses and PR builds off.
	r = do(t, "GET", e.api+"/integrations/buildkite/diagnostics", e.admin, nil)
	var diag struct {
		Checks []struct{ ID, Status, Message string }
	}
	if err := json.Unmarshal([]byte(r.Body), &diag); err != nil || r.Status != 200 {
		t.Fatalf("diagnostics: %d %s", r.Status, r.Body)
	}
	got := map[string]string{}
	for _, c := range diag.Checks {
		got[c.ID] = c.Status
	}
	want := map[string]string{"token_scopes": "pass", "pipelines_visible": "pass", "commit_status": "fail",
		"pull_request_builds": "fail", "webhooks": "pass", "poller": "pass", "git_provider": "not_checked"}
	for id, st := range want {
		if got[id] != st {
			t.Errorf("diagnostic %s = %q, want %q (%s)", id, got[id], st, r.Body)
		}
	}

	// The Builds pages render for a signed-in browser too (API token here).
	if r := do(t, "GET", e.api+"/pipelines", e.admin, nil); r.Status != 200 || !strings.Contains(r.Body, `"slug":"billing"`) {
		t.Fatalf("pipelines: %d %s", r.Status, r.Body)
	}
}

func TestWebhookIntakeOverHTTP(t *testing.T) {
	e := startDetection(t)
	e.configureWebhook(t, bksim.WebhookConfig{})
	url := e.sim.Webhooks()[0].URL
	body := `{"event":"build.scheduled","build":{"number":1,"state":"scheduled"},"pipeline":{"slug":"api"}}`
	// No Origin or Sec-Fetch-Site: the CSRF protection lets it through, and
	// a bad signature is refused with 401 (not 403).
	r := do(t, "POST", url, "", strings.NewReader(body), "X-Buildkite-Event", "build.scheduled",
		"X-Buildkite-Signature", bksim.Sign("wrong", time.Now().Unix(), []byte(body)))
	if r.Status != 401 {
		t.Fatalf("bad signature over HTTP: %d %s", r.Status, r.Body)
	}
	r = do(t, "POST", url, "", strings.NewReader(body), "X-Buildkite-Event", "build.scheduled",
		"X-Buildkite-Signature", bksim.Sign(e.sim.Webhooks()[0].Token, time.Now().Unix(), []byte(body)))
	if r.Status != 202 {
		t.Fatalf("signed delivery over HTTP: %d %s", r.Status, r.Body)
	}
	big := strings.Repeat("a", 2<<20)
	if r := do(t, "POST", url, "", strings.NewReader(big), "X-Buildkite-Event", "build.scheduled"); r.Status != 413 {
		t.Fatalf("oversized body: %d", r.Status)
	}
	if r := do(t, "POST", e.srv.URL+"/webhooks/buildkite/kwhook_"+strings.Repeat("b", 52), "", strings.NewReader(body),
		"X-Buildkite-Event", "build.scheduled"); r.Status != 401 {
		t.Fatalf("unknown endpoint: %d", r.Status)
	}
}

func TestDoctorAndBackfillCommands(t *testing.T) {
	e := startDetection(t)
	out := kw(t, "", "buildkite", "backfill", "--data-dir", e.srv.DataDir, "--org", "acme", "--since", "7d",
		"--buildkite-api-url", e.simURL)
	if !strings.Contains(out, "Backfill of acme") || !strings.Contains(out, "11 builds stored") {
		t.Fatalf("backfill printed %q", out)
	}
	if _, ok := e.build(t, "api", 129); !ok {
		t.Fatal("backfilled build api#129 not visible in the API")
	}
	t.Setenv("KITEWATCH_API_TOKEN", e.admin)
	var stdout, stderr bytes.Buffer
	code := cli.Main(t.Context(), []string{"doctor", "--server", e.srv.URL, "--org", "acme"}, strings.NewReader(""), &stdout, &stderr)
	if code == 0 || !strings.Contains(stdout.String(), "[FAIL] commit_status") || !strings.Contains(stdout.String(), "[ok  ] token_scopes") {
		t.Fatalf("doctor exit %d:\n%s\n%s", code, stdout.String(), stderr.String())
	}
}
