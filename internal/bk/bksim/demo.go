package bksim

import (
	"time"

	"github.com/kitewatch/kitewatch/internal/bk/bksim/loggen"
)

// ReadScopes are the nine read scopes kitewatch asks users for.
var ReadScopes = []string{"read_teams", "read_artifacts", "read_builds", "read_job_env", "read_build_logs", "read_organizations", "read_pipelines", "read_user", "read_suites"}

// DemoTokenValue returns the deterministic value of a demo token: "bkua_"
// and 40 lower-case hex digits derived from the name.
func DemoTokenValue(name string) string { return demoTokenValue("bkua_", name) }

func intp(i int) *int { return &i }

func without(xs []string, drop ...string) []string {
	var out []string
outer:
	for _, x := range xs {
		for _, d := range drop {
			if x == d {
				continue outer
			}
		}
		out = append(out, x)
	}
	return out
}

const junitFailed = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="jest tests" tests="3" failures="1" time="4.21">
  <testsuite name="Checkout" tests="3" failures="1" time="4.21">
    <testcase classname="Checkout" name="renders the summary" time="0.41"/>
    <testcase classname="Checkout" name="shows an error when the card is declined" time="1.02">
      <failure message="expect(received).toHaveTextContent()">Expected element to have text content: Your card was declined
Received: Something went wrong
    at Object.&lt;anonymous&gt; (src/pages/Checkout.test.tsx:58:31)</failure>
    </testcase>
    <testcase classname="Checkout" name="applies a coupon" time="0.33"/>
  </testsuite>
</testsuites>
`

// Demo returns the built-in demo scenario: organization acme ("Acme Inc")
// with several pipelines and passing and failing builds across languages,
// a second organization acme-labs, and tokens for every auth case (see
// Scenario.Tokens). Token values are stable across runs.
func Demo() *Scenario {
	day := 24 * time.Hour
	gen := func(eco, failure string, seed uint64) *LogSpec {
		return &LogSpec{Generate: &loggen.Spec{Ecosystem: eco, Failure: failure, Seed: seed}}
	}
	tok := func(name, purpose string, scopes []string, orgs []string, expires RelTime) TokenSpec {
		return TokenSpec{Name: name, Purpose: purpose, Value: DemoTokenValue(name), User: "ann@acme.test", Scopes: scopes, Organizations: orgs, ExpiresAt: expires, Description: "kitewatch demo: " + name}
	}
	acme := []string{"acme"}
	write := append(append([]string{}, ReadScopes...), "write_builds", "graphql")
	gh := func(statuses, prs bool) ProviderSpec {
		return ProviderSpec{ID: "github", Settings: map[string]any{"publish_commit_status": statuses, "build_pull_requests": prs}}
	}
	sc := &Scenario{
		Version:     ScenarioVersion,
		Description: "kitewatch built-in demo: Acme Inc's CI",
		Organizations: []OrgSpec{
			{Slug: "acme", Name: "Acme Inc"},
			{Slug: "acme-labs", Name: "Acme Labs"},
		},
		Users: []UserSpec{
			{Name: "Ann Example", Email: "ann@acme.test"},
			{Name: "Bo Builder", Email: "bo@acme.test"},
		},
		TokenSpecs: []TokenSpec{
			tok("good", "all nine read scopes, org acme, expires in 90 days", ReadScopes, acme, RelTime{offset: 90 * day, set: true, rel: true}),
			tok("missing-scopes", "lacks read_build_logs and read_suites (403s)", without(ReadScopes, "read_build_logs", "read_suites"), acme, RelTime{offset: 90 * day, set: true, rel: true}),
			tok("expired", "expired yesterday (401)", ReadScopes, acme, Ago(day)),
			tok("write-scopes", "read scopes plus write_builds and graphql (more than kitewatch needs)", write, acme, RelTime{offset: 90 * day, set: true, rel: true}),
			tok("expiring-soon", "expires in 5 days", ReadScopes, acme, RelTime{offset: 5 * day, set: true, rel: true}),
			tok("multi-org", "read scopes on acme and acme-labs", ReadScopes, []string{"acme", "acme-labs"}, RelTime{offset: 90 * day, set: true, rel: true}),
			tok("no-org-access", "read scopes but no organization (404 No organization found)", ReadScopes, nil, RelTime{offset: 90 * day, set: true, rel: true}),
			func() TokenSpec {
				t := tok("ip-restricted", "only usable from 203.0.113.0/24 (403 from here)", ReadScopes, acme, RelTime{offset: 90 * day, set: true, rel: true})
				t.AllowedIPs = []string{"203.0.113.0/24"}
				return t
			}(),
			func() TokenSpec {
				t := tok("revoked", "revoked at Buildkite (401, the same answer as an unknown token)", ReadScopes, acme, RelTime{offset: 90 * day, set: true, rel: true})
				t.Revoked = true
				return t
			}(),
			{Name: "agent-cluster", Purpose: "an agent cluster token (bkct_), wrong kind (401)", Kind: "cluster", Value: demoTokenValue("bkct_", "agent-cluster")},
			{Name: "agent-job", Purpose: "an agent job token (bkaj_), wrong kind (401)", Kind: "job", Value: demoTokenValue("bkaj_", "agent-job")},
		},
		Teams: []TeamSpec{
			{Org: "acme", Slug: "everyone", Name: "Everyone", Default: true, Members: []string{"ann@acme.test", "bo@acme.test"}},
			{Org: "acme", Slug: "platform", Name: "Platform", Description: "CI and infrastructure", Members: []string{"ann@acme.test"}},
		},
		Pipelines: []PipelineSpec{
			{Org: "acme", Slug: "web", Name: "Web", Description: "Storefront (TypeScript)", Repository: "git@github.com:acme/web.git", Provider: gh(true, true)},
			{Org: "acme", Slug: "api", Name: "API", Description: "Go API", Repository: "https://github.com/acme/api.git", Provider: gh(true, true)},
			{Org: "acme", Slug: "ml", Name: "ML", Description: "Python models", Repository: "git@github.com:acme/ml.git", Provider: gh(true, true)},
			{Org: "acme", Slug: "shop", Name: "Shop", Description: "Rails shop", Repository: "git@github.com:acme/shop.git", Provider: gh(true, true)},
			{Org: "acme", Slug: "engine", Name: "Engine", Description: "Rust engine", Repository: "git@github.com:acme/engine.git", Provider: gh(true, true)},
			{Org: "acme", Slug: "billing", Name: "Billing", Description: "JVM billing; commit statuses and PR builds off", Repository: "git@github.com:acme/billing.git", Provider: gh(false, false)},
			{Org: "acme-labs", Slug: "research", Name: "Research", Repository: "git@github.com:acme-labs/research.git", Provider: gh(true, false)},
		},
	}
	ago := func(d time.Duration) RelTime { return Ago(d) }
	min := time.Minute
	sc.Builds = []BuildSpec{
		{Pipeline: "acme/web", Number: 41, State: "passed", Branch: "main", Message: "Bump react to 18.3", CreatedAt: ago(6 * time.Hour),
			Jobs: []JobSpec{{Key: "lint", Name: ":eslint: lint", Command: "yarn lint", State: "passed", Log: gen("js", "", 1)},
				{Key: "test", Name: ":jest: test", Command: "yarn test", State: "passed", Log: gen("js", "", 2)}}},
		{Pipeline: "acme/web", Number: 42, State: "failed", Branch: "feature/checkout-errors", Message: "Show declined card errors", CreatedAt: ago(2 * time.Hour),
			PullRequest: &PullRequestSpec{ID: "318", Base: "main", Repository: "git@github.com:acme/web.git"},
			Jobs: []JobSpec{
				{Key: "lint", Name: ":eslint: lint", Command: "yarn lint", State: "passed", Log: gen("js", "", 3)},
				{Key: "tsc", Name: ":typescript: typecheck", Command: "yarn tsc", State: "passed", Log: gen("js", "", 4)},
				{Key: "test", Name: ":jest: test", Command: "yarn test --ci", State: "failed", Log: gen("js", "jest", 5),
					Artifacts: []ArtifactSpec{{Path: "reports/junit.xml", Content: junitFailed}, {Path: "coverage/lcov-report/index.html", Content: "<html><body>coverage 81.2%</body></html>"}},
					Env:       map[string]string{"NODE_ENV": "test", "JEST_JUNIT_OUTPUT_DIR": "reports"}},
			},
			Annotations: []AnnotationSpec{{Context: "jest", Style: "error", BodyHTML: "<p>1 test failed: <code>Checkout › shows an error when the card is declined</code></p>", Job: "test"}}},
		{Pipeline: "acme/api", Number: 128, State: "passed", Branch: "main", Message: "Add refund endpoint", CreatedAt: ago(5 * time.Hour),
			Jobs: []JobSpec{
				{Key: "test-1", Name: ":go: test %n", Command: "go test ./...", State: "passed", ParallelGroupIndex: intp(0), ParallelGroupTotal: intp(2), Log: gen("go", "", 6)},
				{Key: "test-2", Name: ":go: test %n", Command: "go test ./...", State: "passed", ParallelGroupIndex: intp(1), ParallelGroupTotal: intp(2), Log: gen("go", "", 7)},
				{Key: "wait", Type: "waiter", State: "passed"},
				{Key: "lint-1.25", Name: ":go: vet {{matrix.go}}", Command: "go vet ./...", State: "passed", Matrix: map[string]string{"go": "1.25"}, Log: gen("go", "", 8)},
				{Key: "lint-1.26", Name: ":go: vet {{matrix.go}}", Command: "go vet ./...", State: "passed", Matrix: map[string]string{"go": "1.26"}, Log: gen("go", "", 9)},
			}},
		{Pipeline: "acme/api", Number: 129, State: "failed", Branch: "main", Message: "Refactor checkout totals", CreatedAt: ago(90 * min),
			Jobs: []JobSpec{
				{Key: "build", Name: ":go: build", Command: "go build ./...", State: "passed", Log: gen("go", "", 10)},
				{Key: "test-attempt-1", Name: ":go: test", Command: "go test -race ./...", State: "failed", Log: gen("go", "race", 11)},
				{Key: "test", Name: ":go: test", Command: "go test -race ./...", State: "failed", RetryOf: "test-attempt-1", RetryType: "automatic", Log: gen("go", "test", 12)},
				{Key: "docker", Name: ":docker: image", Command: "docker build -t acme/api:ci .", State: "failed", SoftFailed: true, Log: gen("docker", "build", 13)},
			}},
		{Pipeline: "acme/api", Number: 130, State: "passed", Branch: "fix/flaky-queue", Message: "Retry queue test", CreatedAt: ago(40 * min),
			PullRequest: &PullRequestSpec{ID: "921", Base: "main", Repository: "https://github.com/acme/api.git"},
			Jobs: []JobSpec{
				{Key: "test-attempt-1", Name: ":go: test", Command: "go test ./...", State: "failed", Log: gen("go", "timeout", 14)},
				{Key: "test", Name: ":go: test", Command: "go test ./...", State: "passed", RetryOf: "test-attempt-1", RetryType: "manual", Log: gen("go", "", 15)},
			}},
		{Pipeline: "acme/ml", Number: 77, State: "failed", Branch: "main", Message: "Pin urllib3", CreatedAt: ago(3 * time.Hour),
			Jobs: []JobSpec{{Key: "deps", Name: ":python: install", Command: "pip install -r requirements.txt", State: "failed", Log: gen("python", "pip", 16)}}},
		{Pipeline: "acme/ml", Number: 78, State: "failed", Branch: "main", Message: "Fix invoice rounding", CreatedAt: ago(80 * min),
			Jobs: []JobSpec{
				{Key: "mypy", Name: ":python: mypy", Command: "mypy app", State: "passed", Log: gen("python", "", 17)},
				{Key: "pytest", Name: ":pytest: pytest", Command: "pytest -q", State: "failed", Log: gen("python", "pytest", 18),
					Artifacts: []ArtifactSpec{{Path: "junit/pytest.xml", Content: `<testsuite name="pytest" tests="389" failures="1"><testcase classname="tests.test_billing" name="test_invoice_total"><failure message="AssertionError">assert Decimal('29.99') == Decimal('30.00')</failure></testcase></testsuite>`}}},
			}},
		{Pipeline: "acme/shop", Number: 512, State: "failed", Branch: "main", Message: "Normalise emails", CreatedAt: ago(70 * min),
			Jobs: []JobSpec{{Key: "rspec", Name: ":rspec: rspec", Command: "bundle exec rspec", State: "failed", Log: gen("ruby", "rspec", 19)}}},
		{Pipeline: "acme/engine", Number: 9, State: "failed", Branch: "main", Message: "Widen offsets", CreatedAt: ago(60 * min),
			Jobs: []JobSpec{{Key: "cargo", Name: ":rust: cargo test", Command: "cargo test --workspace", State: "failed", Log: gen("rust", "cargo", 20)}}},
		{Pipeline: "acme/billing", Number: 203, State: "failed", Branch: "main", Message: "Round half up", CreatedAt: ago(50 * min),
			Jobs: []JobSpec{
				{Key: "gradle", Name: ":gradle: test", Command: "./gradlew test", State: "failed", Log: gen("jvm", "gradle", 21)},
				{Key: "integration", Name: ":docker: integration", Command: "make integration", State: "failed", Log: gen("infra", "oom", 22)},
			}},
		{Pipeline: "acme/web", Number: 43, State: "running", Branch: "main", Message: "Tidy CSS", CreatedAt: ago(3 * min),
			Jobs: []JobSpec{{Key: "test", Name: ":jest: test", Command: "yarn test", State: "running", Log: gen("js", "", 23)},
				{Key: "deploy", Name: ":rocket: deploy", Type: "manual", State: "blocked"}}},
		{Pipeline: "acme-labs/research", Number: 3, State: "passed", Branch: "main", Message: "Notebook refresh", CreatedAt: ago(4 * time.Hour),
			Jobs: []JobSpec{{Key: "nb", Name: ":python: notebooks", Command: "pytest nb", State: "passed", Log: gen("python", "", 24)}}},
	}
	sc.Suites = []SuiteSpec{
		{Org: "acme", Slug: "web-jest", Name: "Web Jest", ApplicationName: "web",
			Tests: []TestSpec{
				{Key: "declined", Scope: "Checkout", Name: "shows an error when the card is declined", Location: "src/pages/Checkout.test.tsx:58", Passed: 40, Failed: 3},
				{Key: "summary", Scope: "Checkout", Name: "renders the summary", Location: "src/pages/Checkout.test.tsx:12", Passed: 43},
				{Key: "session", Scope: "useSession", Name: "refreshes an expired session", Location: "src/hooks/useSession.test.ts:31", Labels: []string{"flaky"}, Passed: 35, Failed: 8},
			},
			Runs: []RunSpec{
				{Build: "acme/web#41", Result: "passed"},
				{Build: "acme/web#42", Result: "failed", Failures: []FailureSpec{{Test: "declined", Reason: "Expected element to have text content: Your card was declined", Duration: 1.02,
					Backtrace: []string{"at Object.<anonymous> (src/pages/Checkout.test.tsx:58:31)"}}}},
			}},
		{Org: "acme", Slug: "api-go", Name: "API Go",
			Tests: []TestSpec{
				{Key: "expired-card", Scope: "TestCheckout", Name: "expired_card", Location: "internal/checkout/checkout_test.go:87", Passed: 50, Failed: 2},
				{Key: "queue", Scope: "TestQueueRetry", Name: "TestQueueRetry", Location: "internal/queue/queue_test.go:44", Labels: []string{"flaky"}, Passed: 30, Failed: 9},
			},
			Runs: []RunSpec{
				{Build: "acme/api#129", Result: "failed", Failures: []FailureSpec{{Test: "expired-card", Reason: "charge: got status 500, want 402", Duration: 0.02,
					Backtrace: []string{"internal/checkout/checkout_test.go:87"}}}},
				{Build: "acme/api#130", Result: "passed"},
			}},
	}
	sc.name = "demo"
	return sc
}
