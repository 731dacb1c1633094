package analysis_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/analysis"
	"github.com/kitewatch/kitewatch/internal/bk"
	"github.com/kitewatch/kitewatch/internal/bk/bksim"
	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/secrets"
)

// Secrets planted in the scenario's logs; none may survive an analysis.
const (
	plantedEnvSecret = "s3cr3t-deploy-value-123"
	plantedBKToken   = "bkua_0123456789abcdef0123456789abcdef01234567"
)

const secretLog = "~~~ Running commands\n$ ./deploy.sh\nDeploying with DEPLOY_TOKEN=" + plantedEnvSecret + "\n" +
	"curl -H \"Authorization: Bearer " + plantedBKToken + "\" https://api.example.test\n" +
	"Error: deploy failed: token " + plantedEnvSecret + " rejected (" + plantedBKToken + ")\n" +
	"\x1b[31m🚨 Error: The command exited with status 1\x1b[0m\n"

const junitReport = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="checkout" tests="3" failures="2">
    <testcase classname="checkout" name="TestCheckout/expired_card">
      <failure message="charge: got status 500, want 402">checkout_test.go:88: charge: got status 500, want 402</failure>
    </testcase>
    <testcase classname="ledger" name="TestLedgerBalance">
      <failure message="balance mismatch">ledger/ledger_test.go:41: balance 10 != 12 using ` + plantedEnvSecret + `</failure>
    </testcase>
    <testcase classname="checkout" name="TestCheckout/ok"/>
  </testsuite>
</testsuites>`

// scenario is a simulated Buildkite with one failing build (acme/api#5 on a
// feature branch) exercising every kind of evidence, and a failing main
// build (#4) with the same matrix failure.
func scenario() string {
	gen := func(seed int) string {
		return `{"generate": {"ecosystem": "go", "failure": "test", "seed": ` + itoa(seed) + `}}`
	}
	matrix := func(key, goVersion string) string {
		return `{"key": "` + key + `", "name": "go test {{matrix.go}}", "command": "go test ./...", "state": "failed",
			"matrix": {"go": "` + goVersion + `"}, "log": ` + gen(1) + `,
			"artifacts": [{"path": "junit/` + key + `.xml", "content": ` + jsonString(junitReport) + `}]}`
	}
	sc := `{
  "version": 1,
  "organizations": [{"slug": "acme", "name": "Acme"}],
  "users": [{"name": "Ann", "email": "ann@acme.test"}],
  "tokens": [
    {"name": "good", "value": "` + bksim.DemoTokenValue("good") + `", "user": "ann@acme.test",
     "scopes": ["read_teams", "read_artifacts", "read_builds", "read_job_env", "read_build_logs", "read_organizations", "read_pipelines", "read_user", "read_suites"],
     "organizations": ["acme"]},
    {"name": "builds-only", "value": "` + bksim.DemoTokenValue("builds-only") + `", "user": "ann@acme.test",
     "scopes": ["read_builds", "read_organizations", "read_pipelines"], "organizations": ["acme"]}
  ],
  "pipelines": [{"org": "acme", "slug": "api", "name": "API", "repository": "git@github.com:acme/api.git", "default_branch": "main"}],
  "builds": [
    {"pipeline": "acme/api", "number": 4, "state": "failed", "branch": "main", "created_at": "-3h",
     "jobs": [` + matrix("main-m1", "1.25") + `]},
    {"pipeline": "acme/api", "number": 5, "state": "failed", "branch": "feature/x", "created_at": "-1h",
     "jobs": [
       ` + matrix("m1", "1.24") + `,
       ` + matrix("m2", "1.25") + `,
       ` + matrix("m3", "1.26") + `,
       {"key": "deploy", "name": "deploy", "command": "./deploy.sh", "state": "failed",
        "env": {"DEPLOY_TOKEN": "` + plantedEnvSecret + `", "BUILDKITE_AGENT_NAME": "agent-7"},
        "log": {"text": ` + jsonString(secretLog) + `}},
       {"key": "soft", "name": "docker", "state": "failed", "soft_failed": true, "log": {"generate": {"ecosystem": "docker", "failure": "build", "seed": 2}}},
       {"key": "jest1", "name": "jest", "command": "yarn test", "state": "failed", "log": {"generate": {"ecosystem": "js", "failure": "jest", "seed": 2}}},
       {"key": "jest2", "name": "jest", "command": "yarn test", "state": "passed", "retry_of": "jest1", "retry_type": "automatic"}
     ]}
  ],
  "suites": [
    {"org": "acme", "slug": "api-go", "name": "API Go",
     "tests": [
       {"key": "exp", "scope": "TestCheckout", "name": "expired_card", "location": "checkout_test.go:88", "labels": ["flaky"]},
       {"key": "q", "scope": "TestQueue", "name": "drains", "location": "queue/queue_test.go:19"}
     ],
     "runs": [{"build": "acme/api#5", "result": "failed", "failures": [
       {"test": "exp", "reason": "charge: got status 500, want 402"},
       {"test": "q", "reason": "timed out after 30s", "backtrace": ["queue/queue_test.go:19 +0x1a"]}
     ]}]}
  ]
}`
	return sc
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

type simEnv struct {
	sim *bksim.Server
	url string
}

func newSim(t *testing.T) simEnv {
	t.Helper()
	sc, err := bksim.ParseScenario("analysis.json", []byte(scenario()))
	if err != nil {
		t.Fatal(err)
	}
	sim := bksim.New(sc, bksim.WithRateLimits(100000, 100000))
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	return simEnv{sim: sim, url: srv.URL}
}

func (e simEnv) client(t *testing.T, token string) *bk.Client {
	t.Helper()
	c, err := bk.NewClient(e.url, secrets.NewSecret(bksim.DemoTokenValue(token)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func findingFor(fs []ci.Finding, titlePart string) *ci.Finding {
	for i := range fs {
		if strings.Contains(fs[i].Title, titlePart) {
			return &fs[i]
		}
	}
	return nil
}

func TestAnalyzeBuild(t *testing.T) {
	e := newSim(t)
	rep, err := analysis.AnalyzeBuild(context.Background(), e.client(t, "good"), "acme", "api", 5, analysis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.MarshalIndent(rep.Findings, "", "  ")
	jobs, _ := json.Marshal(rep.Jobs)
	for _, s := range []string{plantedEnvSecret, plantedBKToken} {
		if strings.Contains(string(js)+string(jobs), s) {
			t.Fatalf("secret %.8s… in the report:\n%s\n%s", s, js, jobs)
		}
	}
	if !rep.Failed {
		t.Error("report not failed")
	}
	// Jobs: three matrix jobs, deploy, and the jest job whose retry passed;
	// not the soft-failed one, not the passing retry.
	if len(rep.Jobs) != 5 {
		t.Fatalf("analysed %d jobs: %s", len(rep.Jobs), jobs)
	}
	byKey := map[string]ci.AnalysedJob{}
	for _, j := range rep.Jobs {
		byKey[j.Name] = j
		if j.Name == "docker" {
			t.Errorf("soft-failed job analysed")
		}
	}
	if j := byKey["jest"]; !j.RetriedPassed {
		t.Errorf("jest job: retried_passed not set: %+v", j)
	}
	if j := byKey["deploy"]; j.Env["BUILDKITE_AGENT_NAME"] != "agent-7" || j.Env["DEPLOY_TOKEN"] != "" || len(j.Env) == 0 {
		t.Errorf("deploy job env = %v, want the allow-list only", j.Env)
	}

	// The matrix failure is one finding with three jobs, enriched by JUnit
	// and labelled flaky by Test Engine.
	m := findingFor(rep.Findings, "TestCheckout/expired_card")
	if m == nil {
		t.Fatalf("no matrix finding:\n%s", js)
	}
	if m.JobCount != 3 || len(m.JobIDs) != 3 || m.Category != "test" || m.Source != ci.FindingFromLog {
		t.Errorf("matrix finding: jobs %d %v, category %s, source %s", m.JobCount, m.JobIDs, m.Category, m.Source)
	}
	if !m.Flaky || len(m.Tests) == 0 || !m.Tests[0].Flaky {
		t.Errorf("matrix finding not flaky from Test Engine's label: %+v", m.Tests)
	}
	// A JUnit failure missing from the log becomes its own finding, once.
	l := findingFor(rep.Findings, "TestLedgerBalance")
	if l == nil || l.Source != ci.FindingFromJUnit || l.JobCount != 3 || len(l.Locations) == 0 ||
		l.Locations[0].Path != "ledger/ledger_test.go" || l.Locations[0].Line != 41 {
		t.Errorf("JUnit finding = %+v", l)
	}
	// Test Engine's failed execution unknown to the log and JUnit.
	if q := findingFor(rep.Findings, "drains"); q == nil || q.Source != ci.FindingFromTestEngine || q.JobCount != 0 {
		t.Errorf("Test Engine finding = %+v", q)
	}
	// The deploy failure, redacted.
	d := findingFor(rep.Findings, "deploy failed")
	if d == nil || !strings.Contains(d.Title, "[REDACTED]") || d.JobCount != 1 {
		t.Errorf("deploy finding = %+v", d)
	}
	// The jest failure of the job whose retry passed is flaky.
	if j := findingFor(rep.Findings, "card is declined"); j == nil || !j.Flaky {
		t.Errorf("jest finding = %+v", j)
	}
	if len(rep.Skipped) != 0 {
		t.Errorf("skipped with every scope: %+v", rep.Skipped)
	}
}

// TestAnalyzeBuildMissingScopes: a token with read_builds only still
// produces an analysis, which says what it skipped and why.
func TestAnalyzeBuildMissingScopes(t *testing.T) {
	e := newSim(t)
	rep, err := analysis.AnalyzeBuild(context.Background(), e.client(t, "builds-only"), "acme", "api", 5, analysis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, s := range rep.Skipped {
		reasons[s.Scope] = s.Reason
	}
	for scope, want := range map[string]string{
		"read_build_logs": "read_build_logs missing: logs not analysed",
		"read_job_env":    "read_job_env missing",
		"read_artifacts":  "read_artifacts missing",
		"read_suites":     "read_suites missing",
	} {
		if !strings.HasPrefix(reasons[scope], want) {
			t.Errorf("skipped[%s] = %q, want %q...", scope, reasons[scope], want)
		}
	}
	if len(rep.Skipped) != 4 {
		t.Errorf("one note per missing scope, got %+v", rep.Skipped)
	}
	if len(rep.Jobs) != 5 || len(rep.Findings) != 0 {
		t.Errorf("jobs %d, findings %d", len(rep.Jobs), len(rep.Findings))
	}
	// Once a scope is known to be missing it is not asked again.
	n := 0
	for _, r := range e.sim.Requests() {
		if strings.HasSuffix(r.Path, "/log") && r.Status == 403 {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d forbidden log requests, want 1", n)
	}
}

// TestAnalyzeBuildTail: a large log is analysed from a Range tail when the
// tail explains the failure, and from a tail only when it is over the cap.
func TestAnalyzeBuildTail(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      analysis.Options
		wantTail  bool
		wantWhole bool
		skipped   bool
	}{
		{"small log whole", analysis.Options{}, false, true, false},
		{"tail explains", analysis.Options{TailThreshold: 100, TailBytes: 4096}, true, false, false},
		{"over the cap", analysis.Options{TailThreshold: 100, TailBytes: 64, MaxLogBytes: 200}, true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newSim(t)
			rep, err := analysis.AnalyzeBuild(context.Background(), e.client(t, "good"), "acme", "api", 4, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Jobs) != 1 || rep.Jobs[0].Tail != tc.wantTail || rep.Jobs[0].LogBytes == 0 {
				t.Fatalf("jobs = %+v", rep.Jobs)
			}
			var whole, tail bool
			for _, r := range e.sim.Requests() {
				whole = whole || strings.HasSuffix(r.Path, "/log.txt")
				tail = tail || (strings.HasSuffix(r.Path, "/log") && r.Method == "GET")
			}
			if whole != tc.wantWhole || tail != tc.wantTail {
				t.Errorf("whole log fetched %v, tail fetched %v", whole, tail)
			}
			if tc.wantTail && !tc.skipped && findingFor(rep.Findings, "expired_card") == nil {
				t.Errorf("tail analysis missed the failure: %+v", rep.Findings)
			}
			if got := len(rep.Skipped) > 0 && strings.Contains(rep.Skipped[0].Reason, "over the"); got != tc.skipped {
				t.Errorf("over-the-cap note %v: %+v", got, rep.Skipped)
			}
		})
	}
}

// TestAnalyzeBuildBudget: a low rate-limit budget or a 429 asks for a retry
// after the window resets instead of spending what is left.
func TestAnalyzeBuildBudget(t *testing.T) {
	t.Run("429", func(t *testing.T) {
		e := newSim(t)
		if _, err := e.sim.AddFault(bksim.Fault{Kind: bksim.FaultRateLimit, Path: "/v2/organizations/acme/pipelines/api/builds/5/jobs"}); err != nil {
			t.Fatal(err)
		}
		_, err := analysis.AnalyzeBuild(context.Background(), e.client(t, "good"), "acme", "api", 5, analysis.Options{})
		var later *analysis.RetryLaterError
		if !errors.As(err, &later) || !later.Until.After(time.Now().Add(-time.Second)) {
			t.Fatalf("err = %v, want RetryLaterError", err)
		}
	})
	t.Run("low budget", func(t *testing.T) {
		sc, err := bksim.ParseScenario("analysis.json", []byte(scenario()))
		if err != nil {
			t.Fatal(err)
		}
		sim := bksim.New(sc, bksim.WithRateLimits(1000, 25))
		srv := httptest.NewServer(sim)
		t.Cleanup(func() { srv.Close(); sim.Close() })
		c, _ := bk.NewClient(srv.URL, secrets.NewSecret(bksim.DemoTokenValue("good")))
		_, err = analysis.AnalyzeBuild(context.Background(), c, "acme", "api", 5, analysis.Options{MinBudget: 20})
		var later *analysis.RetryLaterError
		if !errors.As(err, &later) || !strings.Contains(later.Reason, "budget low") {
			t.Fatalf("err = %v, want a budget RetryLaterError", err)
		}
		if n := len(sim.Requests()); n > 6 {
			t.Errorf("%d requests made with a budget of 25 and a floor of 20", n)
		}
	})
}
