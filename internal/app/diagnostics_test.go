package app_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
	"github.com/kitewatch/kitewatch/internal/config"
)

// diagScenario is one organization with one pipeline whose commit statuses
// and pull-request builds are off, no builds and no webhooks: every
// diagnostic that depends on Buildkite data starts out failing.
func diagScenario(t *testing.T) *bksim.Scenario {
	t.Helper()
	scopes, err := json.Marshal(bksim.ReadScopes)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := bksim.ParseScenario("diagnostics.json", fmt.Appendf(nil, `{
  "version": 1,
  "organizations": [{"slug": "acme", "name": "Acme Inc"}],
  "users": [{"name": "Ann", "email": "ann@acme.test"}],
  "tokens": [{"name": "good", "value": %q, "user": "ann@acme.test", "scopes": %s, "organizations": ["acme"]}],
  "pipelines": [
    {"org": "acme", "slug": "api", "name": "API", "repository": "git@github.com:acme/api.git",
     "provider": {"id": "github", "settings": {"publish_commit_status": false, "build_pull_requests": false}}}
  ]
}`, bksim.DemoTokenValue("good"), scopes))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

type diagCheck struct {
	ID, Status, Message, Remedy string
}

// diagnostics fetches the diagnostics of acme by ID.
func (e *detectEnv) diagnostics(t *testing.T) (map[string]diagCheck, string) {
	t.Helper()
	r := do(t, "GET", e.api+"/integrations/buildkite/diagnostics", e.admin, nil)
	var body struct{ Checks []diagCheck }
	if r.Status != 200 {
		t.Fatalf("diagnostics: %d %s", r.Status, r.Body)
	}
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatalf("diagnostics body %q: %v", r.Body, err)
	}
	out := map[string]diagCheck{}
	for _, c := range body.Checks {
		out[c.ID] = c
	}
	return out, r.Body
}

// diagChecks are the checks TestDiagnosticsScenarios drives.
var diagChecks = []string{"token_scopes", "commit_status", "pull_request_builds", "latest_builds", "webhooks", "poller"}

// expectDiagnostics waits (bounded) until the six checks have the wanted
// statuses, then checks that every failing one explains itself.
func (e *detectEnv) expectDiagnostics(t *testing.T, want map[string]string) map[string]diagCheck {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, body := e.diagnostics(t)
		var diff []string
		for _, id := range diagChecks {
			if got[id].Status != want[id] {
				diff = append(diff, fmt.Sprintf("%s = %q, want %q", id, got[id].Status, want[id]))
			}
		}
		if len(diff) == 0 {
			for _, id := range diagChecks {
				if c := got[id]; c.Status == "fail" && (c.Message == "" || c.Remedy == "") {
					t.Fatalf("failing check %s lacks a message or remedy: %+v", id, c)
				}
			}
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("diagnostics: %s\n%s", strings.Join(diff, "; "), body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// post calls a kitewatch integration action and wants 200.
func (e *detectEnv) post(t *testing.T, action string) string {
	t.Helper()
	r := do(t, "POST", e.api+"/integrations/buildkite/"+action, e.admin, nil)
	if r.Status != 200 {
		t.Fatalf("POST %s: %d %s", action, r.Status, r.Body)
	}
	return r.Body
}

// runBuild starts a build on acme/api in the simulator and finishes it.
func (e *detectEnv) runBuild(t *testing.T) {
	t.Helper()
	ref, err := e.sim.StartBuild(bksim.StartSpec{Pipeline: "acme/api", Branch: "main", Outcome: "passed"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.FinishBuild(ref.ID, ""); err != nil {
		t.Fatal(err)
	}
}

// TestDiagnosticsScenarios drives each Buildkite diagnostic to fail and back
// to pass through the running server, changing only the simulated Buildkite
// (scenario, token scopes, pipeline settings, builds, webhooks, faults) and
// calling kitewatch's own API, never its database.
func TestDiagnosticsScenarios(t *testing.T) {
	// Buildkite and kitewatch share one clock that the test can move
	// forward, as time passes between a webhook's setup and a build.
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	sim := bksim.New(diagScenario(t), bksim.WithWebhookRetry(3, 50*time.Millisecond), bksim.WithClock(now))
	hs := httptest.NewServer(sim)
	t.Cleanup(func() { hs.Close(); sim.Close() })
	dir := t.TempDir()
	srv := startServerClock(t, dir, now, func(c *config.Config) { c.BuildkiteAPIURL = hs.URL; c.PollInterval = time.Hour })
	admin, _, _ := seed(t, dir)
	e := &detectEnv{simURL: hs.URL, sim: sim, srv: srv, admin: admin, api: srv.URL + "/api/v1/orgs/acme"}
	r := do(t, "POST", e.api+"/integrations/buildkite", admin,
		strings.NewReader(fmt.Sprintf(`{"token":%q,"organization":"acme"}`, bksim.DemoTokenValue("good"))))
	if r.Status != 200 && r.Status != 201 {
		t.Fatalf("connect: %d %s", r.Status, r.Body)
	}

	// Connecting starts one poll in the background. Waiting for the
	// poller check to pass waits for that poll, so from here on only the
	// steps below poll.
	state := map[string]string{"token_scopes": "pass", "commit_status": "fail", "pull_request_builds": "fail",
		"latest_builds": "fail", "webhooks": "warn", "poller": "pass"}
	got := e.expectDiagnostics(t, state)
	if !strings.Contains(got["commit_status"].Message, "api") || !strings.Contains(got["pull_request_builds"].Message, "api") {
		t.Fatalf("setting checks do not name the pipeline: %+v %+v", got["commit_status"], got["pull_request_builds"])
	}
	// Connected but no builds yet: the Builds page says why and what to do.
	page := getPage(t, signIn(t, srv.URL), srv.URL+"/orgs/acme/builds")
	for _, want := range []string{"No builds yet", "kitewatch polls Buildkite every hour", "Configure the webhook for instant updates", "Open the diagnostics"} {
		if !strings.Contains(page, want) {
			t.Fatalf("connected, empty Builds page lacks %q", want)
		}
	}

	var hookURL, hookToken string
	steps := []struct {
		name string
		act  func(t *testing.T)
		// want changes the expected statuses; the others stay as they were.
		want map[string]string
		// says is a text the check named in its key must show.
		says map[string]string
	}{
		{
			name: "token loses read_builds",
			act: func(t *testing.T) {
				if err := sim.SetTokenScopes("good", slices.DeleteFunc(slices.Clone(bksim.ReadScopes),
					func(s string) bool { return s == "read_builds" })); err != nil {
					t.Fatal(err)
				}
				e.post(t, "verify")
			},
			want: map[string]string{"token_scopes": "fail"},
			says: map[string]string{"token_scopes": "read_builds"},
		},
		{
			name: "token scopes restored",
			act: func(t *testing.T) {
				if err := sim.SetTokenScopes("good", bksim.ReadScopes); err != nil {
					t.Fatal(err)
				}
				e.post(t, "verify")
			},
			want: map[string]string{"token_scopes": "pass"},
		},
		{
			name: "commit statuses turned on",
			act: func(t *testing.T) {
				if err := sim.SetPipelineProvider("acme", "api", map[string]any{"publish_commit_status": true}); err != nil {
					t.Fatal(err)
				}
				e.post(t, "poll")
			},
			want: map[string]string{"commit_status": "pass"},
		},
		{
			name: "commit statuses turned off again",
			act: func(t *testing.T) {
				if err := sim.SetPipelineProvider("acme", "api", map[string]any{"publish_commit_status": false}); err != nil {
					t.Fatal(err)
				}
				e.post(t, "poll")
			},
			want: map[string]string{"commit_status": "fail"},
			says: map[string]string{"commit_status": "publish_commit_status"},
		},
		{
			name: "commit statuses and pull-request builds turned on",
			act: func(t *testing.T) {
				if err := sim.SetPipelineProvider("acme", "api", map[string]any{"publish_commit_status": true,
					"build_pull_requests": true}); err != nil {
					t.Fatal(err)
				}
				e.post(t, "poll")
			},
			want: map[string]string{"commit_status": "pass", "pull_request_builds": "pass"},
		},
		{
			name: "a build runs",
			act: func(t *testing.T) {
				e.runBuild(t)
				e.post(t, "poll")
			},
			want: map[string]string{"latest_builds": "pass"},
		},
		{
			name: "webhook configured in kitewatch, nothing delivered",
			act: func(t *testing.T) {
				r := do(t, "POST", e.api+"/integrations/buildkite/webhook", e.admin, strings.NewReader(`{}`))
				if r.Status != 201 {
					t.Fatalf("configure webhook: %d %s", r.Status, r.Body)
				}
				var setup struct{ URL, Token string }
				if err := json.Unmarshal([]byte(r.Body), &setup); err != nil {
					t.Fatal(err)
				}
				// The configured public URL is the :0 listen address in tests.
				_, path, _ := strings.Cut(setup.URL, "/webhooks/")
				hookURL, hookToken = e.srv.URL+"/webhooks/"+path, setup.Token
			},
			want: map[string]string{"webhooks": "not_checked"},
			says: map[string]string{"webhooks": "No webhook delivery yet"},
		},
		{
			name: "ten minutes later a build reaches kitewatch only by polling",
			act: func(t *testing.T) {
				offset.Add(int64(10 * time.Minute))
				e.runBuild(t)
				e.post(t, "poll")
			},
			want: map[string]string{"webhooks": "fail"},
			says: map[string]string{"webhooks": "reached kitewatch only by polling"},
		},
		{
			name: "Buildkite delivers a build's webhooks",
			act: func(t *testing.T) {
				if _, err := sim.AddWebhook(bksim.WebhookConfig{URL: hookURL, Token: hookToken, Mode: "signature"}); err != nil {
					t.Fatal(err)
				}
				e.runBuild(t)
				if err := sim.WaitWebhooks(t.Context()); err != nil {
					t.Fatal(err)
				}
				for _, d := range sim.Deliveries() {
					if d.Status != 202 {
						t.Fatalf("delivery refused: %+v", d)
					}
				}
			},
			want: map[string]string{"webhooks": "pass"},
		},
		{
			name: "Buildkite API failing",
			act: func(t *testing.T) {
				if _, err := sim.AddFault(bksim.Fault{Org: "acme", Kind: bksim.FaultStatus, Status: 502}); err != nil {
					t.Fatal(err)
				}
				if body := e.post(t, "poll"); !strings.Contains(body, `"error"`) {
					t.Fatalf("poll against a failing API reported no error: %s", body)
				}
			},
			want: map[string]string{"poller": "fail"},
			says: map[string]string{"poller": "1 run in a row"},
		},
		{
			name: "Buildkite API recovers",
			act: func(t *testing.T) {
				sim.ClearFaults()
				if body := e.post(t, "poll"); strings.Contains(body, `"error"`) {
					t.Fatalf("poll after recovery: %s", body)
				}
			},
			want: map[string]string{"poller": "pass"},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.act(t)
			for id, s := range st.want {
				state[id] = s
			}
			got := e.expectDiagnostics(t, state)
			for id, text := range st.says {
				if c := got[id]; !strings.Contains(c.Message, text) {
					t.Errorf("%s message %q lacks %q", id, c.Message, text)
				}
			}
		})
		if t.Failed() {
			return
		}
	}
	for _, id := range diagChecks {
		if state[id] != "pass" {
			t.Errorf("check %s ends %q, want pass", id, state[id])
		}
	}
}
