package bk_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kitewatch/kitewatch/internal/bk"
	"github.com/kitewatch/kitewatch/internal/bk/bksim"
	"github.com/kitewatch/kitewatch/internal/secrets"
)

// failedJob returns the client for a demo token and the id of the failed
// job of acme/web#42, which has JUnit artifacts, an env and a Test Engine run.
func failedJob(t *testing.T, e simEnv, token string) (*bk.Client, string) {
	t.Helper()
	c, err := bk.NewClient(e.url, secrets.NewSecret(bksim.DemoTokenValue(token)))
	if err != nil {
		t.Fatal(err)
	}
	good, err := bk.NewClient(e.url, secrets.NewSecret(bksim.DemoTokenValue("good")))
	if err != nil {
		t.Fatal(err)
	}
	b, err := good.GetBuild(context.Background(), "acme", "web", 42)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range b.Jobs {
		if j.State == "failed" {
			return c, j.ID
		}
	}
	t.Fatal("acme/web#42 has no failed job")
	return nil, ""
}

func TestEvidence(t *testing.T) {
	e := newSim(t)
	ctx := context.Background()
	c, job := failedJob(t, e, "good")

	env, err := c.JobEnv(ctx, "acme", "web", 42, job)
	if err != nil {
		t.Fatal(err)
	}
	if env["BUILDKITE_BRANCH"] != "feature/checkout-errors" || env["BUILDKITE_JOB_ID"] != job {
		t.Fatalf("JobEnv = %v", env)
	}

	arts, err := c.JobArtifacts(ctx, "acme", "web", 42, job)
	if err != nil {
		t.Fatal(err)
	}
	var junit *bk.Artifact
	for i := range arts {
		if arts[i].Path == "reports/junit.xml" {
			junit = &arts[i]
		}
	}
	if junit == nil || junit.JobID != job || junit.FileSize == 0 {
		t.Fatalf("JobArtifacts = %+v", arts)
	}
	data, err := c.DownloadArtifact(ctx, "acme", "web", 42, *junit, 0)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != junit.FileSize || !strings.Contains(string(data), "<testsuite") {
		t.Fatalf("DownloadArtifact = %d bytes: %.80q", len(data), data)
	}
	if _, err := c.DownloadArtifact(ctx, "acme", "web", 42, *junit, 10); !errors.Is(err, bk.ErrLogTooLarge) {
		t.Fatalf("DownloadArtifact over the cap: %v", err)
	}

	runs, err := c.BuildTestEngineRuns(ctx, "acme", "web", 42)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Suite.Slug != "web-jest" || runs[0].ID == "" {
		t.Fatalf("BuildTestEngineRuns = %+v", runs)
	}
	fails, err := c.FailedExecutions(ctx, "acme", runs[0].Suite.Slug, runs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(fails) != 1 || fails[0].Location != "src/pages/Checkout.test.tsx:58" || fails[0].FailureReason == "" ||
		len(fails[0].FailureExpanded) == 0 || len(fails[0].FailureExpanded[0].Backtrace) == 0 {
		t.Fatalf("FailedExecutions = %+v", fails)
	}
	flaky, err := c.FlakyTests(ctx, "acme", "web-jest")
	if err != nil {
		t.Fatal(err)
	}
	if len(flaky) != 1 || flaky[0].Name != "refreshes an expired session" || flaky[0].Location == "" {
		t.Fatalf("FlakyTests = %+v", flaky)
	}
	// The requests went where they should, with the documented queries.
	var sawFlaky, sawExpanded bool
	for _, r := range e.sim.Requests() {
		sawFlaky = sawFlaky || strings.HasSuffix(r.Path, "/suites/web-jest/tests") && strings.Contains(r.Query, "label=flaky")
		sawExpanded = sawExpanded || strings.HasSuffix(r.Path, "/failed_executions") && strings.Contains(r.Query, "include_failure_expanded=true")
	}
	if !sawFlaky || !sawExpanded {
		t.Errorf("requests: flaky label query %v, expanded failures %v", sawFlaky, sawExpanded)
	}
}

// TestEvidenceMissingScopes checks that missing scopes are typed errors
// naming the scope, so the analysis can say what it skipped.
func TestEvidenceMissingScopes(t *testing.T) {
	e := newSim(t)
	ctx := context.Background()
	c, job := failedJob(t, e, "missing-scopes")
	if err := e.sim.SetTokenScopes("missing-scopes", []string{"read_builds"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, scope string
		call        func() error
	}{
		{"env", "read_job_env", func() error { _, err := c.JobEnv(ctx, "acme", "web", 42, job); return err }},
		{"artifacts", "read_artifacts", func() error { _, err := c.JobArtifacts(ctx, "acme", "web", 42, job); return err }},
		{"failed executions", "read_suites", func() error { _, err := c.FailedExecutions(ctx, "acme", "web-jest", "x"); return err }},
		{"flaky", "read_suites", func() error { _, err := c.FlakyTests(ctx, "acme", "web-jest"); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var ae *bk.APIError
			if !bk.IsForbidden(err) || !errors.As(err, &ae) || ae.MissingScope() != tc.scope {
				t.Fatalf("err = %v, want 403 naming %s", err, tc.scope)
			}
		})
	}
	// Test Engine runs come with the build and need only read_builds.
	if _, err := c.BuildTestEngineRuns(ctx, "acme", "web", 42); err != nil {
		t.Fatalf("BuildTestEngineRuns with read_builds only: %v", err)
	}
}
