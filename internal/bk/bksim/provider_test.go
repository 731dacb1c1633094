package bksim_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
)

// providerSettings reads a pipeline's provider settings through the REST API.
func (h *harness) providerSettings(t *testing.T, pipeline string) map[string]any {
	t.Helper()
	resp, body := h.get(t, bksim.DemoTokenValue("good"), "/v2/organizations/acme/pipelines/"+pipeline)
	if resp.StatusCode != 200 {
		t.Fatalf("get pipeline %s: %d %s", pipeline, resp.StatusCode, body)
	}
	var p struct {
		Provider struct {
			Settings map[string]any `json:"settings"`
		} `json:"provider"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	return p.Provider.Settings
}

func TestSetPipelineProvider(t *testing.T) {
	h := newHarness(t)
	patch := func(path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPatch, h.srv.URL+path, strings.NewReader(body))
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	type want struct{ statuses, prs any }
	tests := []struct {
		name  string
		apply func() error
		want  want
	}{
		{"demo billing has both off", func() error { return nil }, want{false, false}},
		{"Go method turns commit statuses on", func() error {
			return h.sim.SetPipelineProvider("acme", "billing", map[string]any{"publish_commit_status": true})
		}, want{true, false}},
		{"HTTP control turns pull-request builds on", func() error {
			if code, body := patch("/_sim/pipelines/acme/billing/provider", `{"settings":{"build_pull_requests":true}}`); code != 204 {
				return errors.New("patch: " + body)
			}
			return nil
		}, want{true, true}},
		{"false turns a setting off again", func() error {
			return h.sim.SetPipelineProvider("acme", "billing", map[string]any{"build_pull_requests": false})
		}, want{true, false}},
		{"null falls back to the provider default", func() error {
			if code, body := patch("/_sim/pipelines/acme/billing/provider", `{"settings":{"build_pull_requests":null}}`); code != 204 {
				return errors.New("patch: " + body)
			}
			return nil
		}, want{true, true}},
	}
	for _, tc := range tests {
		if err := tc.apply(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		s := h.providerSettings(t, "billing")
		if s["publish_commit_status"] != tc.want.statuses || s["build_pull_requests"] != tc.want.prs {
			t.Fatalf("%s: settings %v, want publish_commit_status=%v build_pull_requests=%v", tc.name, s, tc.want.statuses, tc.want.prs)
		}
		if s["repository"] != "acme/billing" {
			t.Fatalf("%s: repository setting lost: %v", tc.name, s)
		}
	}
	// Other pipelines are untouched.
	if s := h.providerSettings(t, "api"); s["publish_commit_status"] != true || s["build_pull_requests"] != true {
		t.Fatalf("api settings changed: %v", s)
	}

	// Errors: unknown pipeline or organization, bad body.
	if err := h.sim.SetPipelineProvider("acme", "nope", map[string]any{"x": true}); !errors.Is(err, bksim.ErrNotFound) {
		t.Fatalf("unknown pipeline: %v", err)
	}
	if code, _ := patch("/_sim/pipelines/nope/billing/provider", `{"settings":{}}`); code != 404 {
		t.Fatalf("unknown org over HTTP: %d", code)
	}
	if code, _ := patch("/_sim/pipelines/acme/billing/provider", `{"setings":{}}`); code != 400 {
		t.Fatalf("unknown field: %d", code)
	}
}

// TestSetPipelineProviderKeepsScenario checks that a change made on one
// server does not leak into another server built from the same scenario.
func TestSetPipelineProviderKeepsScenario(t *testing.T) {
	sc := bksim.Demo()
	a := bksim.New(sc)
	defer a.Close()
	if err := a.SetPipelineProvider("acme", "billing", map[string]any{"publish_commit_status": true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range sc.Pipelines {
		if p.Slug == "billing" && p.Provider.Settings["publish_commit_status"] != false {
			t.Fatalf("scenario changed: %v", p.Provider.Settings)
		}
	}
}
