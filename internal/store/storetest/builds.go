package storetest

import (
	"context"
	"errors"
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
}
