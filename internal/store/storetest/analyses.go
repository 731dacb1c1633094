package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/store"
)

func runAnalyses(t *testing.T, fresh func(t *testing.T) (*store.DB, *clock)) {
	t.Run("Analyses", func(t *testing.T) { cur = t; db, c := fresh(t); testAnalyses(t, db, c) })
	t.Run("AnalysisOfAnotherOrgsBuild", func(t *testing.T) { cur = t; db, _ := fresh(t); testAnalysisOfAnotherOrgsBuild(t, db) })
}

// testAnalysisOfAnotherOrgsBuild checks that an analysis naming another
// organization's build is ci.ErrNotFound and leaves that build's analysis
// as it was.
func testAnalysisOfAnotherOrgsBuild(t *testing.T, db *store.DB) {
	ctx := context.Background()
	acme := must(db.CreateOrg(ctx, "acme", "Acme"))
	other := must(db.CreateOrg(ctx, "other", "Other"))
	b := insertBuild(t, db, ci.Build{OrgID: acme.ID, Pipeline: "api", Number: 1, State: ci.BuildFailed, Branch: "main", Attempt: 1})
	kept := must(db.SaveAnalysis(ctx, ci.Analysis{OrgID: acme.ID, BuildID: b.ID, Attempt: 1, Status: ci.AnalysisDone,
		Findings: []ci.Finding{{Category: "test", Title: "acme's finding", Fingerprint: "fp"}}}))
	for _, orgID := range []int64{other.ID, 0} {
		_, err := db.SaveAnalysis(ctx, ci.Analysis{OrgID: orgID, BuildID: b.ID, Attempt: 1, Status: ci.AnalysisRunning})
		if !errors.Is(err, ci.ErrNotFound) {
			t.Fatalf("SaveAnalysis under organization %d of acme's build: %v, want ErrNotFound", orgID, err)
		}
	}
	got := must(db.LatestAnalysis(ctx, acme.ID, b.ID))
	if got.ID != kept.ID || got.Status != ci.AnalysisDone || len(got.Findings) != 1 || got.Findings[0].Title != "acme's finding" {
		t.Fatalf("acme's analysis changed: %+v", got)
	}
	if _, err := db.LatestAnalysis(ctx, other.ID, b.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("LatestAnalysis for the other organization: %v", err)
	}
}

func insertBuild(t *testing.T, db *store.DB, b ci.Build) ci.Build {
	t.Helper()
	var out ci.Build
	if err := db.InTx(context.Background(), func(tx *store.Tx) error {
		var err error
		out, err = tx.InsertBuild(context.Background(), b)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func testAnalyses(t *testing.T, db *store.DB, c *clock) {
	ctx := context.Background()
	o := must(db.CreateOrg(ctx, "acme", "Acme"))
	other := must(db.CreateOrg(ctx, "other", "Other"))
	created := c.Now().Add(-time.Hour)
	old := c.Now().Add(-30 * 24 * time.Hour)
	pr := insertBuild(t, db, ci.Build{OrgID: o.ID, Pipeline: "api", Number: 10, State: ci.BuildFailed, Branch: "feature",
		PullRequest: 7, CreatedAt: &created, Attempt: 1})
	main1 := insertBuild(t, db, ci.Build{OrgID: o.ID, Pipeline: "api", Number: 9, State: ci.BuildFailed, Branch: "main",
		CreatedAt: &created, Attempt: 1})
	mainOld := insertBuild(t, db, ci.Build{OrgID: o.ID, Pipeline: "api", Number: 2, State: ci.BuildFailed, Branch: "main",
		CreatedAt: &old, Attempt: 1})
	otherB := insertBuild(t, db, ci.Build{OrgID: other.ID, Pipeline: "api", Number: 9, State: ci.BuildFailed, Branch: "main",
		CreatedAt: &created, Attempt: 1})

	if _, err := db.LatestAnalysis(ctx, o.ID, pr.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("LatestAnalysis before any: %v", err)
	}
	exit := 1
	fin := c.Now()
	a := ci.Analysis{OrgID: o.ID, BuildID: pr.ID, Attempt: 1, Status: ci.AnalysisDone, StartedAt: c.Now().Add(-time.Minute),
		FinishedAt: &fin,
		Skipped: []ci.SkippedEvidence{{Evidence: ci.EvidenceTestEngine, Scope: "read_suites",
			Reason: "read_suites missing: Test Engine not consulted"}},
		Jobs: []ci.AnalysedJob{{ID: "job-1", Name: "test", State: "failed", ExitStatus: &exit, LogBytes: 1234,
			Env: map[string]string{"BUILDKITE_BRANCH": "feature"}, Findings: 2}},
		Findings: []ci.Finding{
			{Category: "test", Title: "TestX failed", Section: "Running tests", Excerpt: []string{"--- FAIL: TestX", "x_test.go:12: boom"},
				Locations: []ci.FindingLocation{{Path: "x_test.go", Line: 12}}, Tests: []ci.FindingTest{{Name: "TestX", Flaky: true}},
				Fingerprint: "fp-test", Confidence: 0.9, FirstLine: 10, LastLine: 12, JobIDs: []string{"job-1", "job-2"},
				Flaky: true},
			{Category: "unknown", Title: "Command exited with status 1", Fingerprint: "fp-exit", JobIDs: []string{"job-1"},
				AlsoFailingOnDefaultBranch: true, Source: ci.FindingFromJUnit},
		}}
	saved := must(db.SaveAnalysis(ctx, a))
	if saved.ID == 0 || saved.Findings[0].ID == 0 || saved.Findings[0].JobCount != 2 || saved.Findings[0].Source != ci.FindingFromLog {
		t.Fatalf("SaveAnalysis = %+v", saved)
	}
	got := must(db.LatestAnalysis(ctx, o.ID, pr.ID))
	if got.Status != ci.AnalysisDone || got.Attempt != 1 || got.FinishedAt == nil || !got.FinishedAt.Equal(fin.Truncate(time.Microsecond)) {
		t.Fatalf("LatestAnalysis header = %+v", got)
	}
	if !reflect.DeepEqual(got.Skipped, a.Skipped) || !reflect.DeepEqual(got.Jobs, a.Jobs) {
		t.Fatalf("skipped/jobs round trip: %+v %+v", got.Skipped, got.Jobs)
	}
	if len(got.Findings) != 2 {
		t.Fatalf("findings = %+v", got.Findings)
	}
	f0, f1 := got.Findings[0], got.Findings[1]
	if !reflect.DeepEqual(f0.Excerpt, a.Findings[0].Excerpt) || !reflect.DeepEqual(f0.Locations, a.Findings[0].Locations) ||
		!reflect.DeepEqual(f0.Tests, a.Findings[0].Tests) || !reflect.DeepEqual(f0.JobIDs, a.Findings[0].JobIDs) ||
		f0.JobCount != 2 || !f0.Flaky || f0.Confidence != 0.9 || f0.FirstLine != 10 || f0.LastLine != 12 || f0.Section != "Running tests" {
		t.Fatalf("finding 0 round trip: %+v", f0)
	}
	if f1.Fingerprint != "fp-exit" || !f1.AlsoFailingOnDefaultBranch || f1.Source != ci.FindingFromJUnit ||
		f1.Excerpt == nil || f1.Locations == nil || f1.Tests == nil {
		t.Fatalf("finding 1 round trip: %+v", f1)
	}
	// Another organization's view of the build is not found.
	if _, err := db.LatestAnalysis(ctx, other.ID, pr.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("LatestAnalysis from another org: %v", err)
	}

	// Saving the same attempt again replaces it and its findings.
	a.Findings = a.Findings[:1]
	a.Findings[0].Title = "TestX failed again"
	again := must(db.SaveAnalysis(ctx, a))
	got = must(db.LatestAnalysis(ctx, o.ID, pr.ID))
	if got.ID != again.ID || len(got.Findings) != 1 || got.Findings[0].Title != "TestX failed again" {
		t.Fatalf("after re-save: %+v", got)
	}
	// A running analysis without findings, then attempt 2 becomes the latest.
	must(db.SaveAnalysis(ctx, ci.Analysis{OrgID: o.ID, BuildID: pr.ID, Attempt: 2, Status: ci.AnalysisRunning}))
	got = must(db.LatestAnalysis(ctx, o.ID, pr.ID))
	if got.Attempt != 2 || got.Status != ci.AnalysisRunning || got.FinishedAt != nil || len(got.Findings) != 0 ||
		got.Skipped == nil || got.Jobs == nil || got.StartedAt.IsZero() {
		t.Fatalf("attempt 2: %+v", got)
	}
	if one := must(db.AnalysisOf(ctx, o.ID, pr.ID, 1)); len(one.Findings) != 1 {
		t.Fatalf("AnalysisOf attempt 1: %+v", one)
	}

	// Fingerprints failing on main: recent main builds of the same org and
	// pipeline only, never the build itself, never another org's.
	must(db.SaveAnalysis(ctx, ci.Analysis{OrgID: o.ID, BuildID: main1.ID, Attempt: 1, Status: ci.AnalysisDone,
		Findings: []ci.Finding{{Category: "test", Title: "t", Fingerprint: "fp-main"}}}))
	must(db.SaveAnalysis(ctx, ci.Analysis{OrgID: o.ID, BuildID: mainOld.ID, Attempt: 1, Status: ci.AnalysisDone,
		Findings: []ci.Finding{{Category: "test", Title: "t", Fingerprint: "fp-old"}}}))
	must(db.SaveAnalysis(ctx, ci.Analysis{OrgID: other.ID, BuildID: otherB.ID, Attempt: 1, Status: ci.AnalysisDone,
		Findings: []ci.Finding{{Category: "test", Title: "t", Fingerprint: "fp-other"}}}))
	fps := must(db.FailingFingerprints(ctx, o.ID, "api", "main", c.Now().Add(-7*24*time.Hour), pr.ID))
	if !reflect.DeepEqual(fps, map[string]bool{"fp-main": true}) {
		t.Fatalf("FailingFingerprints = %v", fps)
	}
	if fps := must(db.FailingFingerprints(ctx, o.ID, "api", "main", c.Now().Add(-7*24*time.Hour), main1.ID)); len(fps) != 0 {
		t.Fatalf("FailingFingerprints excluding the build itself = %v", fps)
	}
}
