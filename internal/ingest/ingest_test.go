package ingest_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/ingest"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/store/sqlite"
	"github.com/kitewatch/kitewatch/internal/tasks"
)

type env struct {
	db  *store.DB
	in  *ingest.Ingester
	org ci.Org
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), sqlite.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	q := tasks.New(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := q.Init(tasks.Options{InsertOnly: true}); err != nil {
		t.Fatal(err)
	}
	org, err := db.CreateOrg(ctx, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	return &env{db: db, in: ingest.New(db, q), org: org}
}

// analyzeTasks lists the enqueued analyze_build tasks' arguments.
func (e *env) analyzeTasks(t *testing.T) []string {
	t.Helper()
	rows, err := e.db.Writer().Query(`SELECT json(args) FROM river_job WHERE kind = 'analyze_build' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a []byte
		if err := rows.Scan(&a); err != nil {
			t.Fatal(err)
		}
		out = append(out, string(a))
	}
	return out
}

func (e *env) ingest(t *testing.T, u ingest.Update) ingest.Result {
	t.Helper()
	res, err := e.in.Ingest(context.Background(), e.org.ID, u)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func at(min int) *time.Time {
	t := time.Date(2026, 3, 1, 12, min, 0, 0, time.UTC)
	return &t
}

func build(n int, state string) ci.Build {
	return ci.Build{Pipeline: "api", Number: n, State: state, Branch: "main", Commit: "abc123", CreatedAt: at(0)}
}

func TestOutOfOrderNeverMovesBackwards(t *testing.T) {
	e := newEnv(t)
	fin := build(1, ci.BuildFailed)
	fin.FinishedAt = at(5)
	e.ingest(t, ingest.Update{Source: ci.SourceWebhook, Build: fin})
	for _, st := range []string{ci.BuildRunning, ci.BuildScheduled, ci.BuildFailing} {
		b := build(1, st)
		b.Message = "late " + st
		res := e.ingest(t, ingest.Update{Source: ci.SourceWebhook, Build: b})
		if res.Build.State != ci.BuildFailed || res.Changed {
			t.Fatalf("late %s moved the build to %s (changed %v)", st, res.Build.State, res.Changed)
		}
		if res.Build.Message != "late "+st {
			t.Fatalf("descriptive fields not filled: %q", res.Build.Message)
		}
	}
	if got := e.analyzeTasks(t); len(got) != 1 {
		t.Fatalf("analyze tasks = %v, want 1", got)
	}
}

func TestFailureEpisodesAndUniqueAnalysis(t *testing.T) {
	e := newEnv(t)
	steps := []struct {
		state    string
		finished *time.Time
		attempt  int
		tasks    int
	}{
		{ci.BuildRunning, nil, 0, 0},
		{ci.BuildFailing, nil, 1, 1},
		{ci.BuildFailed, at(5), 1, 1},  // same episode as failing
		{ci.BuildFailed, at(5), 1, 1},  // duplicate
		{ci.BuildPassed, at(9), 1, 1},  // retried and passed
		{ci.BuildFailed, at(20), 2, 2}, // retried again and failed
	}
	for i, s := range steps {
		b := build(1, s.state)
		b.FinishedAt = s.finished
		res := e.ingest(t, ingest.Update{Source: ci.SourcePoll, Build: b})
		if res.Build.Attempt != s.attempt {
			t.Fatalf("step %d (%s): attempt %d, want %d", i, s.state, res.Build.Attempt, s.attempt)
		}
		if got := e.analyzeTasks(t); len(got) != s.tasks {
			t.Fatalf("step %d (%s): %d analyze tasks %v, want %d", i, s.state, len(got), got, s.tasks)
		}
	}
	got := e.analyzeTasks(t)
	if got[1] != `{"org_id":1,"pipeline":"api","number":1,"attempt":2}` {
		t.Fatalf("analyze args = %s", got[1])
	}
}

func TestJobFailureDuringFailingEnqueues(t *testing.T) {
	e := newEnv(t)
	b := build(1, ci.BuildFailing)
	exit := 1
	res := e.ingest(t, ingest.Update{Source: ci.SourceWebhook, Build: b,
		Jobs: []ci.Job{{ExtID: "j1", Name: "test", State: "failed", ExitStatus: &exit}}})
	if res.Analyze == nil || res.Analyze.Attempt != 1 {
		t.Fatalf("Analyze = %+v", res.Analyze)
	}
	// A soft failure does not count; a second hard failure is the same attempt.
	res = e.ingest(t, ingest.Update{Source: ci.SourceWebhook, Build: b,
		Jobs: []ci.Job{{ExtID: "j2", Name: "lint", State: "failed", ExitStatus: &exit}}})
	if got := e.analyzeTasks(t); len(got) != 1 {
		t.Fatalf("analyze tasks = %v", got)
	}
}

func TestJobsMergeAndRetryLinks(t *testing.T) {
	e := newEnv(t)
	b := build(1, ci.BuildRunning)
	// The retry arrives before its original.
	e.ingest(t, ingest.Update{Source: ci.SourceWebhook, Build: b,
		Jobs: []ci.Job{{ExtID: "j2", Name: "test", State: "running", RetryOf: "j1", RetryType: "automatic"}}})
	e.ingest(t, ingest.Update{Source: ci.SourceWebhook, Build: b,
		Jobs: []ci.Job{{ExtID: "j1", Name: "test", State: "failed"}}})
	// A stale job event does not move j2 back.
	e.ingest(t, ingest.Update{Source: ci.SourceWebhook, Build: b,
		Jobs: []ci.Job{{ExtID: "j2", Name: "test", State: "passed", RetryOf: "j1"}}})
	res := e.ingest(t, ingest.Update{Source: ci.SourceWebhook, Build: b,
		Jobs: []ci.Job{{ExtID: "j2", Name: "test", State: "scheduled"}}})
	jobs, err := e.db.Jobs(context.Background(), res.Build.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 {
		t.Fatalf("jobs = %+v", jobs)
	}
	byID := map[string]ci.Job{}
	for _, j := range jobs {
		byID[j.ExtID] = j
	}
	if j := byID["j1"]; !j.Retried || j.RetriedBy != "j2" {
		t.Fatalf("original not linked: %+v", j)
	}
	if j := byID["j2"]; j.State != "passed" || j.RetryOf != "j1" || j.RetryType != "automatic" {
		t.Fatalf("retry = %+v", j)
	}
}

func TestSupersedeAndMapping(t *testing.T) {
	e := newEnv(t)
	p := ci.Pipeline{Slug: "api", Name: "API", Repository: "git@github.com:Acme/API.git", Provider: "github"}
	e.ingest(t, ingest.Update{Source: ci.SourcePoll, Pipeline: &p, Build: build(2, ci.BuildPassed)})
	// An older build arriving late is superseded at once.
	res := e.ingest(t, ingest.Update{Source: ci.SourcePoll, Build: build(1, ci.BuildFailed)})
	if !res.Build.Superseded {
		t.Fatal("older build not marked superseded")
	}
	if res.Build.RepoKey != "github.com/acme/api" || res.Build.Provider != ci.ProviderGitHub {
		t.Fatalf("mapping = %q %q", res.Build.RepoKey, res.Build.Provider)
	}
	pr := build(3, ci.BuildRunning)
	pr.PullRequest, pr.BaseBranch = 12, "main"
	e.ingest(t, ingest.Update{Source: ci.SourcePoll, Build: pr})
	b2, _ := e.db.BuildByNumber(context.Background(), e.org.ID, "api", 2)
	if b2.Superseded {
		t.Fatal("a pull-request build superseded a branch build")
	}
	e.ingest(t, ingest.Update{Source: ci.SourcePoll, Build: build(4, ci.BuildRunning)})
	b2, _ = e.db.BuildByNumber(context.Background(), e.org.ID, "api", 2)
	if !b2.Superseded {
		t.Fatal("build 2 not superseded by build 4")
	}
}

func atMillis(sec, ms int) *time.Time {
	t := at(sec).Add(time.Duration(ms) * time.Millisecond)
	return &t
}

func TestMergeBuild(t *testing.T) {
	for _, tc := range []struct {
		name             string
		old, nb          string
		oldFin, newFin   *time.Time
		want             string
		changed, episode bool
	}{
		{"forward", ci.BuildScheduled, ci.BuildRunning, nil, nil, ci.BuildRunning, true, false},
		{"backward", ci.BuildRunning, ci.BuildScheduled, nil, nil, ci.BuildRunning, false, false},
		{"failing", ci.BuildRunning, ci.BuildFailing, nil, nil, ci.BuildFailing, true, true},
		{"failing to failed", ci.BuildFailing, ci.BuildFailed, nil, at(1), ci.BuildFailed, true, false},
		{"failed twice", ci.BuildFailed, ci.BuildFailed, at(1), at(1), ci.BuildFailed, false, false},
		{"earlier finish ignored", ci.BuildPassed, ci.BuildFailed, at(5), at(1), ci.BuildPassed, false, false},
		{"refinished failed", ci.BuildFailed, ci.BuildFailed, at(1), at(5), ci.BuildFailed, true, true},
		// The same finish seen by webhook (whole seconds) and then by REST (milliseconds).
		{"same finish, finer clock", ci.BuildFailed, ci.BuildFailed, at(1), atMillis(1, 123), ci.BuildFailed, false, false},
		{"refinished passed", ci.BuildFailed, ci.BuildPassed, at(1), at(5), ci.BuildPassed, true, false},
		{"unknown state ignored", ci.BuildRunning, "exploded", nil, nil, ci.BuildRunning, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, changed, episode := ingest.MergeBuild(ci.Build{State: tc.old, FinishedAt: tc.oldFin}, ci.Build{State: tc.nb, FinishedAt: tc.newFin})
			if m.State != tc.want || changed != tc.changed || episode != tc.episode {
				t.Fatalf("MergeBuild = %s, %v, %v; want %s, %v, %v", m.State, changed, episode, tc.want, tc.changed, tc.episode)
			}
		})
	}
}
