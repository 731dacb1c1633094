package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
	"github.com/kitewatch/kitewatch/internal/bk/bksim/loggen"
	"github.com/kitewatch/kitewatch/internal/config"
)

// Secrets planted in job logs and the job environment of the analysis
// scenario. None may reach the database (WAL included), the logs, the API
// or the page.
const (
	analysisEnvSecret = "s3cr3t-deploy-value-123"
	analysisBKToken   = "bkua_0123456789abcdef0123456789abcdef01234567"
)

// analysisScenario has pipeline acme/api and a failed build #5 whose
// environment holds a secret *_TOKEN and whose deploy job prints it and a
// Buildkite token on its failure line. (The secret is in the build's env,
// not the pipeline's: webhook payloads carry the pipeline's env, and
// webhook intake stores raw payloads; see the report.)
func analysisScenario(t *testing.T) *bksim.Scenario {
	t.Helper()
	secretLog := "~~~ Running commands\n$ ./deploy.sh\n" +
		"Error: deploy failed: token " + analysisEnvSecret + " rejected (" + analysisBKToken + ")\n" +
		"\x1b[31m🚨 Error: The command exited with status 1\x1b[0m\n"
	log, _ := json.Marshal(secretLog)
	sc := `{"version": 1,
  "organizations": [{"slug": "acme", "name": "Acme"}],
  "users": [{"name": "Ann", "email": "ann@acme.test"}],
  "tokens": [{"name": "good", "value": "` + bksim.DemoTokenValue("good") + `", "user": "ann@acme.test",
    "scopes": ["read_teams", "read_artifacts", "read_builds", "read_job_env", "read_build_logs", "read_organizations", "read_pipelines", "read_user", "read_suites"],
    "organizations": ["acme"]}],
  "pipelines": [{"org": "acme", "slug": "api", "name": "API", "repository": "git@github.com:acme/api.git", "default_branch": "main",
    "provider": {"id": "github"}}],
  "builds": [{"pipeline": "acme/api", "number": 5, "state": "failed", "branch": "feature/deploy", "created_at": "-5m",
    "env": {"DEPLOY_TOKEN": "` + analysisEnvSecret + `"},
    "jobs": [{"key": "deploy", "name": "deploy", "command": "./deploy.sh", "state": "failed", "log": {"text": ` + string(log) + `}}]}]
}`
	s, err := bksim.ParseScenario("analysis.json", []byte(sc))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type analysisEnv struct {
	sim   *bksim.Server
	srv   *server
	admin string
	other string
	api   string
}

func startAnalysis(t *testing.T) *analysisEnv {
	t.Helper()
	sim := bksim.New(analysisScenario(t), bksim.WithWebhookRetry(3, 50*time.Millisecond), bksim.WithRateLimits(100000, 100000))
	hs := httptest.NewServer(sim)
	t.Cleanup(func() { hs.Close(); sim.Close() })
	dir := t.TempDir()
	srv := startServer(t, dir, func(c *config.Config) { c.BuildkiteAPIURL = hs.URL; c.PollInterval = time.Hour })
	admin, _, other := seed(t, dir)
	e := &analysisEnv{sim: sim, srv: srv, admin: admin, other: other, api: srv.URL + "/api/v1/orgs/acme"}
	r := do(t, "POST", e.api+"/integrations/buildkite", admin,
		strings.NewReader(fmt.Sprintf(`{"token":%q,"organization":"acme"}`, bksim.DemoTokenValue("good"))))
	if r.Status != 200 && r.Status != 201 {
		t.Fatalf("connect: %d %s", r.Status, r.Body)
	}
	return e
}

// webhook configures kitewatch's webhook endpoint in the simulator.
func (e *analysisEnv) webhook(t *testing.T) {
	t.Helper()
	r := do(t, "POST", e.api+"/integrations/buildkite/webhook", e.admin, strings.NewReader(`{}`))
	if r.Status != 201 {
		t.Fatalf("configure webhook: %d %s", r.Status, r.Body)
	}
	var setup struct{ URL, Token string }
	if err := json.Unmarshal([]byte(r.Body), &setup); err != nil {
		t.Fatal(err)
	}
	_, path, _ := strings.Cut(setup.URL, "/webhooks/")
	if _, err := e.sim.AddWebhook(bksim.WebhookConfig{URL: e.srv.URL + "/webhooks/" + path, Token: setup.Token, Mode: "signature"}); err != nil {
		t.Fatal(err)
	}
}

// buildID waits (bounded) for a build to be stored and returns its id.
func (e *analysisEnv) buildID(t *testing.T, number int) int64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r := do(t, "GET", e.api+"/builds?pipeline=api", e.admin, nil)
		var body struct {
			Builds []struct {
				ID     int64
				Number int
				State  string
			}
		}
		_ = json.Unmarshal([]byte(r.Body), &body)
		for _, b := range body.Builds {
			if b.Number == number && b.State == "failed" {
				return b.ID
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("build #%d never stored as failed", number)
	return 0
}

type apiAnalysis struct {
	Analysis struct {
		Status   string
		Attempt  int
		Skipped  []struct{ Reason string }
		Findings []struct {
			Category                   string
			Title                      string
			Excerpt                    []string
			JobCount                   int      `json:"job_count"`
			JobIDs                     []string `json:"job_ids"`
			AlsoFailingOnDefaultBranch bool     `json:"also_failing_on_default_branch"`
			Jobs                       []struct {
				ID     string
				LogURL string `json:"log_url"`
			}
		}
	}
}

// analysis waits (bounded) for the build's analysis to be done.
func (e *analysisEnv) analysis(t *testing.T, buildID int64) (apiAnalysis, string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last resp
	for time.Now().Before(deadline) {
		last = do(t, "GET", fmt.Sprintf("%s/builds/%d/analysis", e.api, buildID), e.admin, nil)
		if last.Status == 200 {
			var a apiAnalysis
			if err := json.Unmarshal([]byte(last.Body), &a); err != nil {
				t.Fatal(err)
			}
			if a.Analysis.Status == "done" || a.Analysis.Status == "failed" {
				return a, last.Body
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no finished analysis for build %d: %d %s", buildID, last.Status, last.Body)
	return apiAnalysis{}, ""
}

// signIn returns an HTTP client with a session of the acme admin.
func signIn(t *testing.T, base string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	res, err := c.PostForm(base+"/signin", url.Values{"email": {"a@acme.test"}, "password": {adminPassword}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if u, _ := url.Parse(base); len(jar.Cookies(u)) == 0 {
		t.Fatalf("sign-in set no cookie (status %d)", res.StatusCode)
	}
	return c
}

func getPage(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, res.StatusCode, b)
	}
	return string(b)
}

// TestBuildAnalysisEndToEnd: a failing matrix build in the simulator,
// detected by webhook, gets its analysis through the task queue; the
// matrix's identical failures are one finding with its job count, on the
// page and through the API; a build with secrets in its log and job
// environment (detected by the poller) is analysed without either secret
// reaching the database files, the logs, the API or the page.
func TestBuildAnalysisEndToEnd(t *testing.T) {
	e := startAnalysis(t)
	e.webhook(t)
	web := signIn(t, e.srv.URL)

	// Webhook: a matrix of three identical failing jobs.
	logSpec := &loggen.Spec{Ecosystem: "go", Failure: "test", Seed: 1}
	var jobs []bksim.StartJob
	for _, v := range []string{"1.24", "1.25", "1.26"} {
		jobs = append(jobs, bksim.StartJob{Key: "go-" + v, Name: "go test " + v, Command: "go test ./...", Outcome: "failed", Log: logSpec})
	}
	ref, err := e.sim.StartBuild(bksim.StartSpec{Pipeline: "acme/api", Branch: "feature/matrix", Outcome: "failed", Jobs: jobs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.FinishBuild(ref.ID, ""); err != nil {
		t.Fatal(err)
	}
	id := e.buildID(t, ref.Number)
	a, body := e.analysis(t, id)
	if a.Analysis.Status != "done" || len(a.Analysis.Findings) != 1 {
		t.Fatalf("matrix analysis: %s", body)
	}
	f := a.Analysis.Findings[0]
	if f.JobCount != 3 || len(f.JobIDs) != 3 || f.Category != "test" || !strings.Contains(f.Title, "TestCheckout/expired_card") {
		t.Fatalf("matrix finding: %s", body)
	}
	if len(f.Jobs) != 3 || !strings.HasPrefix(f.Jobs[0].LogURL, "https://buildkite.com/acme/api/builds/") ||
		!strings.HasSuffix(f.Jobs[0].LogURL, "#"+f.Jobs[0].ID) {
		t.Errorf("job deep links: %+v", f.Jobs)
	}
	page := getPage(t, web, fmt.Sprintf("%s/orgs/acme/builds/%d", e.srv.URL, id))
	for _, want := range []string{"Failure analysis", "in 3 jobs", "TestCheckout/expired_card", `class="term-container"`,
		`<span class="term-fg31 term-fg1">`, `href="/static/terminal.css"`, "#" + f.Jobs[0].ID} {
		if !strings.Contains(page, want) {
			t.Errorf("analysis page lacks %q", want)
		}
	}
	if css := getPage(t, web, e.srv.URL+"/static/terminal.css"); !strings.Contains(css, ".term-fg31") {
		t.Error("terminal.css lacks the terminal-to-html classes")
	}

	// Other organizations' members get 404, like the rest of the API.
	other := e.other
	if r := do(t, "GET", fmt.Sprintf("%s/builds/%d/analysis", e.api, id), other, nil); r.Status != 404 {
		t.Errorf("analysis for another org's member: %d", r.Status)
	}
	if r := do(t, "GET", fmt.Sprintf("%s/api/v1/orgs/other/builds/%d/analysis", e.srv.URL, id), other, nil); r.Status != 404 {
		t.Errorf("analysis through another org: %d", r.Status)
	}

	// Poller: the scenario's build #5, whose deploy job leaks both secrets.
	if r := do(t, "POST", e.api+"/integrations/buildkite/poll", e.admin, nil); r.Status >= 300 {
		t.Fatalf("poll: %d %s", r.Status, r.Body)
	}
	id5 := e.buildID(t, 5)
	a5, body5 := e.analysis(t, id5)
	if a5.Analysis.Status != "done" || len(a5.Analysis.Findings) == 0 || !strings.Contains(body5, "[REDACTED]") {
		t.Fatalf("secret build analysis: %s", body5)
	}
	page5 := getPage(t, web, fmt.Sprintf("%s/orgs/acme/builds/%d", e.srv.URL, id5))
	if !strings.Contains(page5, "deploy failed") {
		t.Errorf("page lacks the deploy finding")
	}
	secrets := []string{analysisEnvSecret, analysisBKToken}
	for _, s := range secrets {
		if strings.Contains(body5, s) || strings.Contains(page5, s) || strings.Contains(body, s) {
			t.Errorf("secret %.8s… in the API answer or the page", s)
		}
	}
	// Let SQLite write everything, then search the files (WAL included).
	assertNoSecrets(t, e.srv.Logs.String(), e.srv.DataDir, secrets)
}

// TestBuildAnalysisLatency measures the time from the simulator finishing a
// build (which sends build.finished) to the stored analysis, for a build
// with one failed 10 MB job, and logs it for docs/benchmarks.md. It makes
// no timing assertion.
func TestBuildAnalysisLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("10 MB log: skipped with -short")
	}
	e := startAnalysis(t)
	e.webhook(t)
	ref, err := e.sim.StartBuild(bksim.StartSpec{Pipeline: "acme/api", Branch: "feature/big", Outcome: "failed",
		Jobs: []bksim.StartJob{{Key: "big", Name: "go test", Command: "go test ./...", Outcome: "failed",
			Log: &loggen.Spec{Ecosystem: "go", Failure: "test", Seed: 9, Size: 10 << 20}}}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := e.sim.FinishBuild(ref.ID, ""); err != nil {
		t.Fatal(err)
	}
	id := e.buildID(t, ref.Number)
	detected := time.Since(start)
	a, body := e.analysis(t, id)
	total := time.Since(start)
	if a.Analysis.Status != "done" || len(a.Analysis.Findings) == 0 {
		t.Fatalf("analysis: %s", body)
	}
	t.Logf("build.finished → build stored %v; → analysis stored %v (10 MB log, polling the API every 100 ms)",
		detected.Round(time.Millisecond), total.Round(time.Millisecond))
}
