package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/store"
)

func testBuilds(t *testing.T, db *store.DB, c *clock) {
	ctx := context.Background()
	o := must(db.CreateOrg(ctx, "acme", "Acme"))
	other := must(db.CreateOrg(ctx, "other", "Other"))
	yes, no := true, false
	p := must(db.UpsertPipeline(ctx, ci.Pipeline{OrgID: o.ID, Slug: "api", Name: "API", Repository: "git@github.com:acme/api.git",
		RepoKey: "github.com/acme/api", Provider: ci.ProviderGitHub, PublishCommitStatus: &yes}))
	p2 := must(db.UpsertPipeline(ctx, ci.Pipeline{OrgID: o.ID, Slug: "api", Name: "API 2", BuildPullRequests: &no}))
	if p2.ID != p.ID {
		t.Fatalf("upsert created a second pipeline: %d vs %d", p2.ID, p.ID)
	}
	got := must(db.Pipeline(ctx, o.ID, "api"))
	if got.Name != "API 2" || got.PublishCommitStatus != nil || got.BuildPullRequests == nil || *got.BuildPullRequests {
		t.Fatalf("Pipeline = %+v", got)
	}
	if _, err := db.Pipeline(ctx, other.ID, "api"); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("pipeline of another org: %v", err)
	}

	created := c.Now().Add(-time.Hour)
	var b1 ci.Build
	err := db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.LockBuild(ctx, o.ID, "api", 1); !errors.Is(err, ci.ErrNotFound) {
			t.Fatalf("LockBuild of a missing build: %v", err)
		}
		var err error
		b1, err = tx.InsertBuild(ctx, ci.Build{OrgID: o.ID, Pipeline: "api", Number: 1, State: ci.BuildRunning, Branch: "main",
			Commit: "abc", CreatedAt: &created, LastSource: ci.SourceWebhook})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.InsertBuild(ctx, ci.Build{OrgID: o.ID, Pipeline: "api", Number: 1, State: ci.BuildRunning})
		return err
	}); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("duplicate build: %v", err)
	}
	fin := c.Now()
	err = db.InTx(ctx, func(tx *store.Tx) error {
		b, err := tx.LockBuild(ctx, o.ID, "api", 1)
		if err != nil {
			return err
		}
		b.State, b.FinishedAt, b.Attempt = ci.BuildFailed, &fin, 1
		if _, err := tx.UpdateBuild(ctx, b); err != nil {
			return err
		}
		exit := 1
		if err := tx.SaveJob(ctx, ci.Job{BuildID: b.ID, ExtID: "j1", Name: "test", State: "failed", ExitStatus: &exit}); err != nil {
			return err
		}
		if err := tx.SaveJob(ctx, ci.Job{BuildID: b.ID, ExtID: "j2", Name: "test", State: "passed", RetryOf: "j1"}); err != nil {
			return err
		}
		return tx.SaveJob(ctx, ci.Job{BuildID: b.ID, ExtID: "j1", Name: "test", State: "failed", ExitStatus: &exit, Retried: true, RetriedBy: "j2"})
	})
	if err != nil {
		t.Fatal(err)
	}
	b := must(db.Build(ctx, o.ID, b1.ID))
	if b.State != ci.BuildFailed || b.Attempt != 1 || b.FinishedAt == nil || !b.FinishedAt.Equal(fin.Truncate(time.Microsecond)) ||
		b.CreatedAt == nil || b.Commit != "abc" {
		t.Fatalf("Build = %+v", b)
	}
	if _, err := db.Build(ctx, other.ID, b1.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("build of another org: %v", err)
	}
	jobs := must(db.Jobs(ctx, b.ID))
	if len(jobs) != 2 || !jobs[0].Retried || jobs[0].RetriedBy != "j2" || jobs[1].RetryOf != "j1" || jobs[0].ExitStatus == nil || *jobs[0].ExitStatus != 1 {
		t.Fatalf("Jobs = %+v", jobs)
	}
	if need := must(db.BuildsNeedingJobs(ctx, o.ID, 10)); len(need) != 1 {
		t.Fatalf("BuildsNeedingJobs = %+v", need)
	}

	// Supersede: build 2 on main supersedes build 1; a PR build is separate.
	err = db.InTx(ctx, func(tx *store.Tx) error {
		b2, err := tx.InsertBuild(ctx, ci.Build{OrgID: o.ID, Pipeline: "api", Number: 2, State: ci.BuildScheduled, Branch: "main"})
		if err != nil {
			return err
		}
		if self, err := tx.MarkSuperseded(ctx, b2); err != nil || self {
			t.Fatalf("MarkSuperseded(2) = %v, %v", self, err)
		}
		pr, err := tx.InsertBuild(ctx, ci.Build{OrgID: o.ID, Pipeline: "api", Number: 3, State: ci.BuildScheduled, Branch: "main", PullRequest: 7})
		if err != nil {
			return err
		}
		_, err = tx.MarkSuperseded(ctx, pr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if b := must(db.BuildByNumber(ctx, o.ID, "api", 1)); !b.Superseded {
		t.Fatal("build 1 not superseded by build 2")
	}
	if b := must(db.BuildByNumber(ctx, o.ID, "api", 2)); b.Superseded {
		t.Fatal("build 2 superseded by a pull-request build")
	}
	all := must(db.ListBuilds(ctx, ci.BuildFilter{OrgID: o.ID}))
	if len(all) != 3 || all[0].Number != 3 {
		t.Fatalf("ListBuilds = %+v", all)
	}
	for _, tc := range []struct {
		f    ci.BuildFilter
		want int
	}{
		{ci.BuildFilter{OrgID: o.ID, PullRequest: 7}, 1},
		{ci.BuildFilter{OrgID: o.ID, State: ci.BuildFailed}, 1},
		{ci.BuildFilter{OrgID: o.ID, Commit: "abc"}, 1},
		{ci.BuildFilter{OrgID: o.ID, Branch: "main", Pipeline: "api"}, 3},
		{ci.BuildFilter{OrgID: o.ID, BeforeID: all[0].ID, Limit: 1}, 1},
		{ci.BuildFilter{OrgID: other.ID}, 0},
	} {
		if got := must(db.ListBuilds(ctx, tc.f)); len(got) != tc.want {
			t.Errorf("ListBuilds(%+v) = %d builds, want %d", tc.f, len(got), tc.want)
		}
	}
	if n := must(db.CountBuilds(ctx, o.ID)); n != 3 {
		t.Fatalf("CountBuilds = %d", n)
	}
	if latest := must(db.LatestBuilds(ctx, o.ID)); len(latest) != 1 {
		t.Fatalf("LatestBuilds = %v", latest)
	}
}

func testWebhookDeliveries(t *testing.T, db *store.DB, c *clock) {
	ctx := context.Background()
	o := must(db.CreateOrg(ctx, "acme", "Acme"))
	e := ci.WebhookEndpoint{OrgID: o.ID, EndpointID: "ep1", SecretSealed: []byte("sealed"), Mode: ci.WebhookModeSignature,
		CreatedAt: c.Now(), RotatedAt: c.Now()}
	if err := db.SaveWebhookEndpoint(ctx, e); err != nil {
		t.Fatal(err)
	}
	e.EndpointID = "ep2"
	if err := db.SaveWebhookEndpoint(ctx, e); err != nil {
		t.Fatal(err)
	}
	if _, err := db.WebhookEndpointByID(ctx, "ep1"); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("rotated endpoint id still found: %v", err)
	}
	got := must(db.WebhookEndpointByID(ctx, "ep2"))
	if got.OrgID != o.ID || string(got.SecretSealed) != "sealed" {
		t.Fatalf("WebhookEndpointByID = %+v", got)
	}
	var first int64
	insert := func(reqID, hash string) (int64, bool) {
		var id int64
		var ok bool
		err := db.InTx(ctx, func(tx *store.Tx) error {
			var err error
			id, ok, err = tx.InsertDelivery(ctx, ci.WebhookDelivery{OrgID: o.ID, RequestID: reqID, Event: "build.finished",
				Body: []byte(`{}`), ReceivedAt: c.Now()}, []byte(hash))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return id, ok
	}
	first, ok := insert("r1", "h1")
	if !ok || first == 0 {
		t.Fatal("first delivery not stored")
	}
	if _, ok := insert("r1", "h2"); ok {
		t.Fatal("same request id stored twice")
	}
	if _, ok := insert("r2", "h1"); ok {
		t.Fatal("same body stored twice")
	}
	if _, ok := insert("", "h3"); !ok {
		t.Fatal("delivery without request id refused")
	}
	if _, ok := insert("", "h4"); !ok {
		t.Fatal("second delivery without request id refused")
	}
	err := db.InTx(ctx, func(tx *store.Tx) error {
		if ok, err := tx.MarkDeliveryProcessed(ctx, first); err != nil || !ok {
			t.Fatalf("first MarkDeliveryProcessed = %v, %v", ok, err)
		}
		if ok, err := tx.MarkDeliveryProcessed(ctx, first); err != nil || ok {
			t.Fatalf("second MarkDeliveryProcessed = %v, %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st := must(db.DeliveryStats(ctx, o.ID, c.Now().Add(-time.Minute)))
	if st.Received != 3 || st.Processed != 1 || st.LastAt == nil {
		t.Fatalf("DeliveryStats = %+v", st)
	}
	if ep := must(db.WebhookEndpoint(ctx, o.ID)); ep.LastDeliveryAt == nil {
		t.Fatal("last delivery time not recorded")
	}
	d := must(db.Delivery(ctx, first))
	if d.RequestID != "r1" || d.ProcessedAt == nil || string(d.Body) != "{}" {
		t.Fatalf("Delivery = %+v", d)
	}

	ps := must(db.PollState(ctx, o.ID))
	if ps.LastSuccessAt != nil || ps.OrgID != o.ID {
		t.Fatalf("fresh PollState = %+v", ps)
	}
	now := c.Now()
	ps.Created.Cursor, ps.Calls = &now, 12
	if err := db.SavePollState(ctx, ps); err != nil {
		t.Fatal(err)
	}
	if ps := must(db.PollState(ctx, o.ID)); ps.Calls != 12 || ps.Created.Cursor == nil || !ps.Created.Cursor.Equal(now) {
		t.Fatalf("PollState = %+v", ps)
	}
}

// runBuilds runs the build-detection part of the suite.
func runBuilds(t *testing.T, fresh func(t *testing.T) (*store.DB, *clock)) {
	t.Run("Builds", func(t *testing.T) { cur = t; db, c := fresh(t); testBuilds(t, db, c) })
	t.Run("WebhookDeliveries", func(t *testing.T) { cur = t; db, c := fresh(t); testWebhookDeliveries(t, db, c) })
	t.Run("BuildListOrder", func(t *testing.T) { cur = t; db, c := fresh(t); testBuildListOrder(t, db, c) })
}

// testBuildListOrder checks that the builds list is newest first by when
// Buildkite created the build, not by when kitewatch stored it: a build a
// backfill finds later sorts below newer builds. Ties go to the higher
// number, then the higher id; a build without a creation time sorts by when
// kitewatch first saw it. Paging by BeforeID walks the same order.
func testBuildListOrder(t *testing.T, db *store.DB, c *clock) {
	ctx := context.Background()
	o := must(db.CreateOrg(ctx, "acme", "Acme"))
	other := must(db.CreateOrg(ctx, "other", "Other"))
	at := func(ago time.Duration) *time.Time { v := c.Now().Add(-ago); return &v }
	// Inserted in this order, so row ids follow it: the webhook and the
	// poller first saw the recent builds, then a backfill found an older one.
	insert := func(pipeline string, number int, created *time.Time) ci.Build {
		return insertBuild(t, db, ci.Build{OrgID: o.ID, Pipeline: pipeline, Number: number, State: ci.BuildPassed,
			CreatedAt: created, LastSource: ci.SourceWebhook})
	}
	api10 := insert("api", 10, at(time.Hour))
	web3 := insert("web", 3, at(time.Hour))
	docs10 := insert("docs", 10, at(time.Hour))
	web4 := insert("web", 4, nil) // creation time unknown: first seen now
	backfilled := insert("api", 5, at(48*time.Hour))
	foreign := insertBuild(t, db, ci.Build{OrgID: other.ID, Pipeline: "api", Number: 1, State: ci.BuildPassed, CreatedAt: at(time.Minute)})

	want := []int64{web4.ID, docs10.ID, api10.ID, web3.ID, backfilled.ID}
	ids := func(bs []ci.Build) []int64 {
		out := []int64{}
		for _, b := range bs {
			out = append(out, b.ID)
		}
		return out
	}
	if got := ids(must(db.ListBuilds(ctx, ci.BuildFilter{OrgID: o.ID}))); !slices.Equal(got, want) {
		t.Fatalf("ListBuilds order = %v, want %v (backfilled build %d last)", got, want, backfilled.ID)
	}
	for _, limit := range []int{1, 2, 3} {
		var got []int64
		f := ci.BuildFilter{OrgID: o.ID, Limit: limit}
		for page := 0; page < 10; page++ {
			bs := must(db.ListBuilds(ctx, f))
			got = append(got, ids(bs)...)
			if len(bs) < limit {
				break
			}
			f.BeforeID = bs[len(bs)-1].ID
		}
		if !slices.Equal(got, want) {
			t.Errorf("paging by %d = %v, want %v", limit, got, want)
		}
	}
	for _, tc := range []struct {
		name   string
		before int64
		want   []int64
	}{
		{"after the backfilled build", backfilled.ID, []int64{}},
		{"after a build of the same time", api10.ID, []int64{web3.ID, backfilled.ID}},
		{"after a build of another organization", foreign.ID, []int64{}},
		{"after a build that does not exist", backfilled.ID + 1000, []int64{}},
	} {
		got := ids(must(db.ListBuilds(ctx, ci.BuildFilter{OrgID: o.ID, BeforeID: tc.before})))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: ListBuilds(before %d) = %v, want %v", tc.name, tc.before, got, tc.want)
		}
	}
	if got := ids(must(db.ListBuilds(ctx, ci.BuildFilter{OrgID: o.ID, Pipeline: "api", BeforeID: api10.ID}))); !slices.Equal(got, []int64{backfilled.ID}) {
		t.Errorf("filtered page after api#10 = %v, want [%d]", got, backfilled.ID)
	}
}
