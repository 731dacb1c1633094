package poller_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kitewatch/kitewatch/internal/poller"
)

// TestRunNowRereadsPipelines checks that a requested poll re-reads pipeline
// settings that a periodic poll only re-reads after PipelineRefresh.
func TestRunNowRereadsPipelines(t *testing.T) {
	f := newFixture(t, 200, poller.Options{})
	ctx := context.Background()
	commitStatus := func() (on, known bool) {
		t.Helper()
		ps, err := f.db.Pipelines(ctx, f.org.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.Slug == "billing" && p.PublishCommitStatus != nil {
				return *p.PublishCommitStatus, true
			}
		}
		return false, false
	}
	listings := func() int {
		n := 0
		for _, r := range f.sim.Requests() {
			if strings.HasSuffix(r.Path, "/organizations/acme/pipelines") {
				n++
			}
		}
		return n
	}
	steps := []struct {
		name     string
		run      func(context.Context, int64) (poller.Report, error)
		wantOn   bool
		listings int
	}{
		{"first periodic run reads pipelines", f.p.RunOnce, false, 1},
		{"periodic run within PipelineRefresh does not", f.p.RunOnce, false, 1},
		{"requested run does", f.p.RunNow, true, 2},
	}
	for i, st := range steps {
		if i == 1 {
			if err := f.sim.SetPipelineProvider("acme", "billing", map[string]any{"publish_commit_status": true}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.run(ctx, f.org.ID); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		on, known := commitStatus()
		if !known || on != st.wantOn || listings() != st.listings {
			t.Fatalf("%s: publish_commit_status %v (known %v), pipeline listings %d; want %v and %d",
				st.name, on, known, listings(), st.wantOn, st.listings)
		}
	}
}
