package webhook_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/ingest"
	"github.com/kitewatch/kitewatch/internal/tasks"
	"github.com/kitewatch/kitewatch/internal/webhook"
)

func TestSweepProcessesLeftoverDeliveries(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "")
	unprocessed := func() int {
		t.Helper()
		var n int
		if err := f.db.Writer().QueryRow(`SELECT COUNT(*) FROM webhook_deliveries WHERE processed_at IS NULL`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	body := buildBody(11, "failed")
	if code, resp := f.post(t, f.setup.URL, body, f.signed("build.finished", "s1", body, f.now)); code != http.StatusAccepted {
		t.Fatalf("delivery: %d %s", code, resp)
	}
	// A fresh delivery belongs to its queued task: the sweep leaves it.
	if n, err := f.svc.Sweep(ctx); err != nil || n != 0 || unprocessed() != 1 {
		t.Fatalf("sweep of a fresh delivery: %d, %v, %d unprocessed", n, err, unprocessed())
	}

	// A restarted process takes over what the previous one left behind.
	q := tasks.New(f.db, slog.New(slog.DiscardHandler))
	if err := q.Init(tasks.Options{InsertOnly: true}); err != nil {
		t.Fatal(err)
	}
	later := f.now.Add(time.Second)
	restarted := webhook.New(webhook.Options{DB: f.db, Queue: q, Ingester: ingest.New(f.db, q), Now: func() time.Time { return later }})
	if n, err := restarted.Sweep(ctx); err != nil || n != 1 || unprocessed() != 0 {
		t.Fatalf("sweep after a restart: %d, %v, %d unprocessed", n, err, unprocessed())
	}
	b, err := f.db.BuildByNumber(ctx, f.org.ID, "api", 11)
	if err != nil || b.State != "failed" {
		t.Fatalf("swept build: %+v, %v", b, err)
	}
	// The lost task running later anyway changes nothing.
	var id int64
	if err := f.db.Writer().QueryRow(`SELECT id FROM webhook_deliveries WHERE request_id = 's1'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Process(ctx, id); err != nil {
		t.Fatal(err)
	}
	var analyses int
	if err := f.db.Writer().QueryRow(`SELECT COUNT(*) FROM river_job WHERE kind = 'analyze_build'`).Scan(&analyses); err != nil || analyses != 1 {
		t.Fatalf("analyze_build tasks after sweep and late task: %d, %v", analyses, err)
	}
	if n, err := restarted.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("second sweep: %d, %v", n, err)
	}

	// In the same process, a delivery unprocessed for StaleAfter is swept.
	body = buildBody(12, "running")
	if code, _ := f.post(t, f.setup.URL, body, f.signed("build.running", "s2", body, f.now)); code != http.StatusAccepted {
		t.Fatalf("second delivery: %d", code)
	}
	f.now = f.now.Add(webhook.StaleAfter + time.Second)
	if n, err := f.svc.Sweep(ctx); err != nil || n != 1 || unprocessed() != 0 {
		t.Fatalf("sweep of a stale delivery: %d, %v, %d unprocessed", n, err, unprocessed())
	}
}
