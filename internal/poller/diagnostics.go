package poller

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// Check outcomes.
const (
	Pass       = "pass"
	Warn       = "warn"
	Fail       = "fail"
	NotChecked = "not_checked"
)

// Check is one "missing build data" diagnostic.
type Check struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Remedy  string `json:"remedy,omitempty"`
}

// Facts are what the diagnostics look at, gathered by the caller.
type Facts struct {
	Now time.Time
	// Connected is false when no Buildkite token is stored.
	Connected bool
	// Scopes are the token's scopes as last verified.
	Scopes       []string
	Pipelines    []ci.Pipeline
	LatestBuilds map[string]time.Time
	// WebhookConfigured and LastDelivery describe webhook intake.
	WebhookConfigured bool
	LastDelivery      *time.Time
	// WebhookSince is when the endpoint's current secret was made (at
	// creation or the last rotation): deliveries are expected from then on.
	WebhookSince *time.Time
	Poll         ci.PollState
	PollInterval time.Duration
	// GitProviderConnected is nil until kitewatch has Git provider
	// connections.
	GitProviderConnected *bool
}

// Diagnose runs every check, in a stable order.
func Diagnose(f Facts) []Check {
	return []Check{
		checkScopes(f), checkPipelines(f), checkRepositories(f), checkSetting(f, "commit_status"),
		checkSetting(f, "pull_request_builds"), checkLatestBuilds(f), checkWebhooks(f), checkPoller(f), checkGitProvider(f),
	}
}

func notConnected(id string) Check {
	return Check{ID: id, Status: NotChecked, Message: "Buildkite is not connected.", Remedy: "Connect Buildkite under Settings → Integrations."}
}

func checkScopes(f Facts) Check {
	const id = "token_scopes"
	if !f.Connected {
		return notConnected(id)
	}
	var missing []string
	for _, s := range []string{"read_builds", "read_pipelines"} {
		if !slices.Contains(f.Scopes, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return Check{ID: id, Status: Fail, Message: "The token lacks " + strings.Join(missing, " and ") + ": kitewatch cannot list builds.",
			Remedy: "Edit the token in Buildkite (Personal Settings → API Access Tokens) to add " + strings.Join(missing, ", ") + ", then re-check."}
	}
	return Check{ID: id, Status: Pass, Message: "The token has read_builds and read_pipelines."}
}

func checkPipelines(f Facts) Check {
	const id = "pipelines_visible"
	if !f.Connected {
		return notConnected(id)
	}
	if len(f.Pipelines) == 0 && f.Poll.LastSuccessAt == nil && f.Poll.Failures == 0 {
		// Right after connecting: the first poll lists the pipelines.
		return Check{ID: id, Status: NotChecked, Message: "Waiting for the first poll, which lists the pipelines the token can see."}
	}
	if len(f.Pipelines) == 0 {
		return Check{ID: id, Status: Fail, Message: "No pipelines are visible to the token.",
			Remedy: "Check that the token's user belongs to teams with access to the pipelines, and that the poller has run."}
	}
	if len(f.Pipelines) == 1 {
		return Check{ID: id, Status: Pass, Message: "1 pipeline visible."}
	}
	return Check{ID: id, Status: Pass, Message: fmt.Sprintf("%d pipelines visible.", len(f.Pipelines))}
}

func names(ps []ci.Pipeline) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Slug
	}
	return strings.Join(s, ", ")
}

func checkRepositories(f Facts) Check {
	const id = "repositories_recognised"
	if len(f.Pipelines) == 0 {
		return Check{ID: id, Status: NotChecked, Message: "No pipelines yet."}
	}
	var bad []ci.Pipeline
	for _, p := range f.Pipelines {
		if p.RepoKey == "" || p.Provider == ci.ProviderUnknown || p.Provider == "" {
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 {
		return Check{ID: id, Status: Warn, Message: "Repository or provider not recognised for: " + names(bad) + ".",
			Remedy: "Use a GitHub, GitHub Enterprise, GitLab or Bitbucket repository URL in the pipeline settings."}
	}
	return Check{ID: id, Status: Pass, Message: "Every pipeline's repository and provider are recognised."}
}

func checkSetting(f Facts, id string) Check {
	if len(f.Pipelines) == 0 {
		return Check{ID: id, Status: NotChecked, Message: "No pipelines yet."}
	}
	var off, unknown []ci.Pipeline
	for _, p := range f.Pipelines {
		v := p.PublishCommitStatus
		if id == "pull_request_builds" {
			v = p.BuildPullRequests
		}
		switch {
		case v == nil:
			unknown = append(unknown, p)
		case !*v:
			off = append(off, p)
		}
	}
	what, setting := "Commit statuses", "publish_commit_status"
	remedy := "In the pipeline's Settings → GitHub (or your provider), turn on \"Update commit statuses\"."
	if id == "pull_request_builds" {
		what, setting = "Pull-request builds", "build_pull_requests"
		remedy = "In the pipeline's Settings → GitHub (or your provider), turn on \"Build pull requests\"."
	}
	switch {
	case len(off) > 0:
		return Check{ID: id, Status: Fail, Message: what + " are off (" + setting + ") for: " + names(off) + ".", Remedy: remedy}
	case len(unknown) == len(f.Pipelines):
		return Check{ID: id, Status: NotChecked, Message: "The provider does not report " + setting + "."}
	case len(unknown) > 0:
		return Check{ID: id, Status: Warn, Message: "The provider does not report " + setting + " for: " + names(unknown) + "."}
	}
	return Check{ID: id, Status: Pass, Message: what + " are on for every pipeline."}
}

func checkLatestBuilds(f Facts) Check {
	const id = "latest_builds"
	if len(f.Pipelines) == 0 {
		return Check{ID: id, Status: NotChecked, Message: "No pipelines yet."}
	}
	if len(f.LatestBuilds) == 0 {
		return Check{ID: id, Status: Fail, Message: "kitewatch has seen no builds.",
			Remedy: "Wait for the poller, check the poller and webhook checks, or run kitewatch buildkite backfill --since 7d."}
	}
	var stale []string
	for _, p := range f.Pipelines {
		at, ok := f.LatestBuilds[p.Slug]
		switch {
		case !ok:
			stale = append(stale, p.Slug+" (none)")
		case f.Now.Sub(at) > 30*24*time.Hour:
			stale = append(stale, fmt.Sprintf("%s (%d days)", p.Slug, int(f.Now.Sub(at).Hours()/24)))
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		return Check{ID: id, Status: Warn, Message: "No build in the last 30 days for: " + strings.Join(stale, ", ") + ".",
			Remedy: "Idle pipelines are fine; otherwise check their triggers in Buildkite."}
	}
	return Check{ID: id, Status: Pass, Message: "Every pipeline has a build in the last 30 days."}
}

// webhookGrace is how much later than the last delivery (or the endpoint's
// setup) a build may be created before its missing delivery counts as a
// failure: it absorbs clock skew between Buildkite and kitewatch and a
// poll that finds a build just before its webhook lands.
const webhookGrace = 5 * time.Minute

func checkWebhooks(f Facts) Check {
	const id = "webhooks"
	if !f.WebhookConfigured {
		return Check{ID: id, Status: Warn, Message: "Webhooks not configured: polling only (builds appear up to one poll interval late).",
			Remedy: "Create a webhook endpoint (kitewatch shows the URL and token) and add it in Buildkite's Notification Services."}
	}
	// A quiet organization sends no deliveries, and that is fine. What is
	// wrong is a build that kitewatch knows of (by polling) although it was
	// created after the last delivery, or after the endpoint was set up:
	// Buildkite sends build.scheduled for every build, so its delivery is
	// missing.
	var newest time.Time
	for _, at := range f.LatestBuilds {
		if at.After(newest) {
			newest = at
		}
	}
	ref := f.LastDelivery
	if f.WebhookSince != nil && (ref == nil || f.WebhookSince.After(*ref)) {
		ref = f.WebhookSince
	}
	remedy := "In Buildkite's Notification Services, check the webhook URL, the token and the signature setting, and its request log."
	if ref != nil && newest.After(ref.Add(webhookGrace)) {
		if f.LastDelivery == nil || f.LastDelivery.Before(*ref) {
			return Check{ID: id, Status: Fail, Message: "No webhook delivery since the endpoint was set up (" + stamp(*ref) +
				"), but builds created since then (newest " + stamp(newest) + ") reached kitewatch only by polling.", Remedy: remedy}
		}
		return Check{ID: id, Status: Fail, Message: "The last webhook delivery was at " + stamp(*f.LastDelivery) +
			", but builds created since then (newest " + stamp(newest) + ") reached kitewatch only by polling.", Remedy: remedy}
	}
	if f.LastDelivery == nil || (f.WebhookSince != nil && f.LastDelivery.Before(*f.WebhookSince)) {
		return Check{ID: id, Status: NotChecked, Message: "No webhook delivery yet, and no build since the endpoint was set up: the next build will show whether deliveries arrive.",
			Remedy: "Make sure the webhook is added in Buildkite's Notification Services with this endpoint's URL and token."}
	}
	msg := "Webhook deliveries arrive (last " + stamp(*f.LastDelivery) + ")."
	if f.Now.Sub(*f.LastDelivery) > 24*time.Hour {
		msg = "Webhook deliveries arrived for every build so far (last " + stamp(*f.LastDelivery) + "; no builds since)."
	}
	return Check{ID: id, Status: Pass, Message: msg}
}

// stamp is a time for people: "2026-11-27 10:44:05 UTC".
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

func checkPoller(f Facts) Check {
	const id = "poller"
	if !f.Connected {
		return notConnected(id)
	}
	p := f.Poll
	if p.Failures > 0 || (p.BreakerUntil != nil && f.Now.Before(*p.BreakerUntil)) {
		return Check{ID: id, Status: Fail, Message: fmt.Sprintf("The poller is failing (%s in a row): %s", runs(p.Failures), p.LastError),
			Remedy: "Fix the cause shown; the poller retries on its own with backoff."}
	}
	if p.LastSuccessAt == nil {
		return Check{ID: id, Status: NotChecked, Message: "The poller has not completed a run yet."}
	}
	interval := max(f.PollInterval, time.Minute)
	if age := f.Now.Sub(*p.LastSuccessAt); age > 3*interval {
		return Check{ID: id, Status: Warn, Message: fmt.Sprintf("Last successful poll %s ago (lag %.0f s).", age.Round(time.Second), p.LagSeconds),
			Remedy: "The poller may be starved by the rate limit; check budget headroom and other API users."}
	}
	if p.BudgetLimit > 0 && p.BudgetRemain == 0 && p.LastError != "" {
		return Check{ID: id, Status: Warn, Message: "The poller used its whole request budget: " + p.LastError}
	}
	msg := fmt.Sprintf("Last successful poll at %s (lag %.0f s).", stamp(*p.LastSuccessAt), p.LagSeconds)
	if p.BudgetLimit > 0 {
		msg += fmt.Sprintf(" %d of %d API requests left in this minute's budget.", p.BudgetRemain, p.BudgetLimit)
	}
	return Check{ID: id, Status: Pass, Message: msg}
}

func runs(n int) string {
	if n == 1 {
		return "1 run"
	}
	return fmt.Sprintf("%d runs", n)
}

func checkGitProvider(f Facts) Check {
	const id = "git_provider"
	if f.GitProviderConnected == nil {
		return Check{ID: id, Status: NotChecked, Message: "No Git provider connection exists yet; repository access is not checked."}
	}
	if !*f.GitProviderConnected {
		return Check{ID: id, Status: Fail, Message: "The repositories are not connected on the Git provider side."}
	}
	return Check{ID: id, Status: Pass, Message: "Repositories are connected on the Git provider side."}
}
