package poller

import (
	"strings"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// TestDiagnoseFailAndPass drives each check to fail with a scenario and
// back to pass with the fix.
func TestDiagnoseFailAndPass(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	yes, no := true, false
	recent := now.Add(-time.Hour)
	good := func() Facts {
		return Facts{Now: now, Connected: true, Scopes: []string{"read_builds", "read_pipelines"},
			Pipelines: []ci.Pipeline{{Slug: "api", RepoKey: "github.com/acme/api", Provider: ci.ProviderGitHub,
				PublishCommitStatus: &yes, BuildPullRequests: &yes}},
			LatestBuilds: map[string]time.Time{"api": recent}, WebhookConfigured: true, LastDelivery: &recent,
			Poll: ci.PollState{LastSuccessAt: &recent, BudgetLimit: 100, BudgetRemain: 90}, PollInterval: time.Hour}
	}
	for _, tc := range []struct {
		id     string
		break_ func(f *Facts)
	}{
		{"token_scopes", func(f *Facts) { f.Scopes = []string{"read_pipelines"} }},
		{"pipelines_visible", func(f *Facts) { f.Pipelines = nil }},
		{"commit_status", func(f *Facts) { f.Pipelines[0].PublishCommitStatus = &no }},
		{"pull_request_builds", func(f *Facts) { f.Pipelines[0].BuildPullRequests = &no }},
		{"latest_builds", func(f *Facts) { f.LatestBuilds = nil }},
		{"webhooks", func(f *Facts) { old := now.Add(-48 * time.Hour); f.LastDelivery = &old }},
		{"poller", func(f *Facts) { f.Poll.Failures, f.Poll.LastError = 3, "Buildkite answered 502" }},
	} {
		t.Run(tc.id, func(t *testing.T) {
			f := good()
			tc.break_(&f)
			if c := find(Diagnose(f), tc.id); c.Status != Fail || c.Remedy == "" {
				t.Fatalf("broken: %+v", c)
			}
			if c := find(Diagnose(good()), tc.id); c.Status != Pass {
				t.Fatalf("fixed: %+v", c)
			}
		})
	}
	// Right after connecting, before the first poll, no pipelines is no
	// failure yet.
	f := good()
	f.Pipelines, f.Poll = nil, ci.PollState{}
	if c := find(Diagnose(f), "pipelines_visible"); c.Status != NotChecked || !strings.Contains(c.Message, "first poll") {
		t.Fatalf("before the first poll: %+v", c)
	}
	f = good()
	f.WebhookConfigured = false
	if c := find(Diagnose(f), "webhooks"); c.Status != Warn {
		t.Fatalf("no webhook configured: %+v", c)
	}
	// A quiet organization: no build since the last delivery two days ago.
	f = good()
	old := now.Add(-48 * time.Hour)
	f.LastDelivery, f.LatestBuilds = &old, map[string]time.Time{"api": old.Add(-time.Minute)}
	if c := find(Diagnose(f), "webhooks"); c.Status != Pass || !strings.Contains(c.Message, "no builds since") {
		t.Fatalf("quiet organization: %+v", c)
	}
	// A build within the grace after the last delivery (clock skew, a poll
	// just ahead of its webhook) is no failure.
	f.LatestBuilds = map[string]time.Time{"api": old.Add(webhookGrace - time.Second)}
	if c := find(Diagnose(f), "webhooks"); c.Status != Pass {
		t.Fatalf("build within the grace: %+v", c)
	}
	// Endpoint just set up: nothing delivered, no build since.
	f = good()
	since := now.Add(-10 * time.Minute)
	f.LastDelivery, f.WebhookSince = nil, &since
	if c := find(Diagnose(f), "webhooks"); c.Status != NotChecked {
		t.Fatalf("new endpoint, no build since: %+v", c)
	}
	// ... then a build is created and arrives only by polling.
	f.LatestBuilds = map[string]time.Time{"api": now.Add(-time.Minute)}
	if c := find(Diagnose(f), "webhooks"); c.Status != Fail || !strings.Contains(c.Message, "since the endpoint was set up") {
		t.Fatalf("new endpoint, build by polling only: %+v", c)
	}
	// A rotated secret: deliveries before the rotation do not count.
	f = good()
	f.WebhookSince = &since
	f.LatestBuilds = map[string]time.Time{"api": now.Add(-time.Minute)}
	if c := find(Diagnose(f), "webhooks"); c.Status != Fail {
		t.Fatalf("rotated secret, build by polling only: %+v", c)
	}
	if c := find(Diagnose(good()), "git_provider"); c.Status != NotChecked {
		t.Fatalf("git provider: %+v", c)
	}
	f = good()
	f.Pipelines[0].RepoKey = ""
	if c := find(Diagnose(f), "repositories_recognised"); c.Status != Warn {
		t.Fatalf("unrecognised repository: %+v", c)
	}
}

func find(cs []Check, id string) Check {
	for _, c := range cs {
		if c.ID == id {
			return c
		}
	}
	return Check{}
}
