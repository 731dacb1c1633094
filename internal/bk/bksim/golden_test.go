package bksim_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// fixedNow pins the clock so that golden files are stable.
var fixedNow = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)

// TestGolden pins the JSON field names, order and formats of each resource.
// Job logs are elided to keep the files readable; logs have their own tests.
func TestGolden(t *testing.T) {
	sim := bksim.New(bksim.Demo(), bksim.WithClock(func() time.Time { return fixedNow }), bksim.WithBaseURL("https://api.buildkite.com"))
	srv := httptest.NewServer(sim)
	defer srv.Close()
	defer sim.Close()
	h := &harness{sim: sim, srv: srv}
	good := bksim.DemoTokenValue("good")
	const job = "/v2/organizations/acme/pipelines/web/builds/42/jobs/"
	b42 := mustJSON(t, h, good, "/v2/organizations/acme/pipelines/web/builds/42")
	testJob := b42["jobs"].([]any)[2].(map[string]any)["id"].(string)
	arts := mustJSONList(t, h, good, "/v2/organizations/acme/pipelines/web/builds/42/artifacts")
	art := arts[0].(map[string]any)["id"].(string)
	suiteRuns := mustJSONList(t, h, good, "/v2/analytics/organizations/acme/suites/web-jest/runs?build_id="+b42["id"].(string))
	run := suiteRuns[0].(map[string]any)["id"].(string)
	cases := []struct{ name, path string }{
		{"access_token", "/v2/access-token"},
		{"user", "/v2/user"},
		{"organization", "/v2/organizations/acme"},
		{"pipeline", "/v2/organizations/acme/pipelines/web"},
		{"build", "/v2/organizations/acme/pipelines/web/builds/42?include_test_engine=true"},
		{"build_retried", "/v2/organizations/acme/pipelines/api/builds/129?include_retried_jobs=true&exclude_pipeline=true"},
		{"job", job + testJob},
		{"job_env", job + testJob + "/env"},
		{"artifacts", "/v2/organizations/acme/pipelines/web/builds/42/artifacts"},
		{"artifact", job + testJob + "/artifacts/" + art},
		{"annotations", "/v2/organizations/acme/pipelines/web/builds/42/annotations"},
		{"teams", "/v2/organizations/acme/teams"},
		{"rate_limit", "/v2/organizations/acme/rate_limit"},
		{"suite", "/v2/analytics/organizations/acme/suites/web-jest"},
		{"runs", "/v2/analytics/organizations/acme/suites/web-jest/runs"},
		{"failed_executions", "/v2/analytics/organizations/acme/suites/web-jest/runs/" + run + "/failed_executions?include_failure_expanded=true"},
		{"tests_flaky", "/v2/analytics/organizations/acme/suites/web-jest/tests?label=flaky"},
		{"build_tests", "/v2/analytics/organizations/acme/builds/" + b42["id"].(string) + "/tests?include=latest_fail"},
		{"error_scope", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			token, path := good, c.path
			if c.name == "error_scope" {
				token, path = bksim.DemoTokenValue("missing-scopes"), job+testJob+"/log"
			}
			_, body := h.get(t, token, path)
			var out bytes.Buffer
			if err := json.Indent(&out, body, "", "  "); err != nil {
				t.Fatalf("%s: %v: %s", path, err, body)
			}
			got := regexp.MustCompile(`http://127\.0\.0\.1:\d+`).ReplaceAll(out.Bytes(), []byte("https://api.buildkite.com"))
			file := filepath.Join("testdata", c.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s; run go test -run TestGolden -update and review the diff\n%s", path, file, got)
			}
		})
	}
}

func mustJSON(t *testing.T, h *harness, tok, path string) map[string]any {
	t.Helper()
	_, b := h.get(t, tok, path)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %s", path, b)
	}
	return m
}

func mustJSONList(t *testing.T, h *harness, tok, path string) []any {
	t.Helper()
	_, b := h.get(t, tok, path)
	var m []any
	if err := json.Unmarshal(b, &m); err != nil || len(m) == 0 {
		t.Fatalf("%s: %s", path, b)
	}
	return m
}
