package ci

import "time"

// Build states as Buildkite reports them (REST and webhooks).
const (
	BuildCreating  = "creating"
	BuildScheduled = "scheduled"
	BuildRunning   = "running"
	BuildBlocked   = "blocked"
	BuildFailing   = "failing"
	BuildCanceling = "canceling"
	BuildPassed    = "passed"
	BuildFailed    = "failed"
	BuildCanceled  = "canceled"
	BuildSkipped   = "skipped"
	BuildNotRun    = "not_run"
)

// Source providers kitewatch recognises from a pipeline's provider id or,
// failing that, its repository host.
const (
	ProviderGitHub           = "github"
	ProviderGitHubEnterprise = "github_enterprise"
	ProviderGitLab           = "gitlab"
	ProviderBitbucket        = "bitbucket"
	ProviderUnknown          = "unknown"
)

// Where a build update came from.
const (
	SourceWebhook  = "webhook"
	SourcePoll     = "poll"
	SourceBackfill = "backfill"
)

// BuildStateRank orders build states so that an update can never move a
// build backwards: creating < scheduled < running/blocked < failing/canceling
// < finished. Unknown states rank lowest.
func BuildStateRank(state string) int {
	switch state {
	case BuildCreating:
		return 1
	case BuildScheduled:
		return 2
	case BuildRunning, BuildBlocked:
		return 3
	case BuildFailing, BuildCanceling:
		return 4
	case BuildPassed, BuildFailed, BuildCanceled, BuildSkipped, BuildNotRun:
		return 5
	}
	return 0
}

// BuildFinished reports whether state is a final build state.
func BuildFinished(state string) bool { return BuildStateRank(state) == 5 }

// JobStateRank orders job states the same way: pending and waiting first,
// then scheduled, assigned, accepted, running, the transitional
// canceling/timing_out, and the final states last.
func JobStateRank(state string) int {
	switch state {
	case "pending", "waiting", "blocked":
		return 1
	case "limited", "limiting", "scheduled", "unblocked":
		return 2
	case "assigned", "accepted", "reserved":
		return 3
	case "running":
		return 4
	case "canceling", "timing_out":
		return 5
	case "passed", "failed", "canceled", "timed_out", "skipped", "broken", "expired",
		"waiting_failed", "blocked_failed", "unblocked_failed", "finished":
		return 6
	}
	return 0
}

// JobFailed reports whether a job state is a failure worth explaining.
func JobFailed(state string) bool {
	return state == "failed" || state == "timed_out" || state == "expired"
}

// Pipeline is a Buildkite pipeline as kitewatch knows it.
type Pipeline struct {
	ID            int64  `json:"id"`
	OrgID         int64  `json:"-"`
	Slug          string `json:"slug"`
	Name          string `json:"name"`
	ExtID         string `json:"buildkite_id"`
	Repository    string `json:"repository"`
	RepoKey       string `json:"repository_key"` // host/owner/repo, "" when unrecognised
	Provider      string `json:"provider"`
	DefaultBranch string `json:"default_branch"`
	// PublishCommitStatus and BuildPullRequests are the provider settings;
	// nil when the provider does not report them.
	PublishCommitStatus *bool     `json:"publish_commit_status"`
	BuildPullRequests   *bool     `json:"build_pull_requests"`
	WebURL              string    `json:"web_url"`
	UpdatedAt           time.Time `json:"updated_at"`
}

// Build is one Buildkite build of a pipeline, identified inside an
// organization by pipeline slug and number.
type Build struct {
	ID            int64  `json:"id"`
	OrgID         int64  `json:"-"`
	Pipeline      string `json:"pipeline"`
	Number        int    `json:"number"`
	ExtID         string `json:"buildkite_id"`
	State         string `json:"state"`
	Blocked       bool   `json:"blocked"`
	Branch        string `json:"branch"`
	Commit        string `json:"commit"`
	Message       string `json:"message"`
	Tag           string `json:"tag,omitempty"`
	TriggerSource string `json:"source"` // webhook, api, ui, trigger_job, schedule
	// PullRequest is the pull request number, 0 for a branch build.
	PullRequest  int        `json:"pull_request,omitempty"`
	BaseBranch   string     `json:"base_branch,omitempty"`
	PRRepository string     `json:"pull_request_repository,omitempty"`
	AuthorName   string     `json:"author_name"`
	AuthorEmail  string     `json:"author_email"`
	CreatorName  string     `json:"creator_name"`
	CreatorEmail string     `json:"creator_email"`
	RepoKey      string     `json:"repository_key"`
	Provider     string     `json:"provider"`
	WebURL       string     `json:"web_url"`
	RebuiltFrom  int        `json:"rebuilt_from,omitempty"`
	CreatedAt    *time.Time `json:"created_at"`
	ScheduledAt  *time.Time `json:"scheduled_at"`
	StartedAt    *time.Time `json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at"`
	// Superseded is set when a newer build of the same pipeline and branch
	// (or pull request) exists.
	Superseded bool `json:"superseded"`
	// Attempt counts how many times the build reached a failure (failing or
	// failed), so a retried and again failed build gets a new analysis.
	Attempt int `json:"attempt"`
	// JobsSynced is when the build's full job list was last fetched.
	JobsSynced *time.Time `json:"jobs_synced_at"`
	// LastSource says whether the latest update came from a webhook, the
	// poller or a backfill.
	LastSource string    `json:"last_source"`
	FirstSeen  time.Time `json:"first_seen_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Job is one job of a build.
type Job struct {
	ID         int64  `json:"-"`
	BuildID    int64  `json:"-"`
	ExtID      string `json:"id"`
	Type       string `json:"type"`
	Name       string `json:"name"`
	StepKey    string `json:"step_key,omitempty"`
	State      string `json:"state"`
	ExitStatus *int   `json:"exit_status"`
	SoftFailed bool   `json:"soft_failed"`
	// Retried is set on a job that was replaced by RetriedBy.
	Retried   bool   `json:"retried"`
	RetriedBy string `json:"retried_in_job_id,omitempty"`
	// RetryOf is the job this one retries, RetryType manual or automatic.
	RetryOf       string     `json:"retry_of,omitempty"`
	RetryType     string     `json:"retry_type,omitempty"`
	ParallelIndex *int       `json:"parallel_group_index,omitempty"`
	ParallelTotal *int       `json:"parallel_group_total,omitempty"`
	WebURL        string     `json:"web_url"`
	StartedAt     *time.Time `json:"started_at"`
	FinishedAt    *time.Time `json:"finished_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// Duration is how long a job ran, 0 when it has not both started and finished.
func (j Job) Duration() time.Duration {
	if j.StartedAt == nil || j.FinishedAt == nil {
		return 0
	}
	return j.FinishedAt.Sub(*j.StartedAt)
}

// Duration is how long a build ran, 0 when it has not both started and finished.
func (b Build) Duration() time.Duration {
	if b.StartedAt == nil || b.FinishedAt == nil {
		return 0
	}
	return b.FinishedAt.Sub(*b.StartedAt)
}

// BuildFilter selects builds of one organization.
type BuildFilter struct {
	OrgID       int64
	Pipeline    string
	Branch      string
	State       string
	PullRequest int
	Commit      string
	// BeforeID pages backwards: only builds that sort after (are older than)
	// the build with this id, in the list's newest-first order.
	BeforeID int64
	Limit    int
}

// WebhookEndpoint is an organization's Buildkite webhook receiver: an
// unguessable public id in the URL and a secret shared with Buildkite, kept
// sealed.
type WebhookEndpoint struct {
	OrgID        int64
	EndpointID   string
	SecretSealed []byte
	SecretKEKID  string
	// Mode is "signature" (default) or "token" (weaker, opt-in).
	Mode           string
	CreatedAt      time.Time
	RotatedAt      time.Time
	LastDeliveryAt *time.Time
}

// Webhook modes.
const (
	WebhookModeSignature = "signature"
	WebhookModeToken     = "token"
)

// WebhookDelivery is one accepted webhook request, stored before it is
// processed.
type WebhookDelivery struct {
	ID          int64
	OrgID       int64
	RequestID   string
	Event       string
	Body        []byte
	ReceivedAt  time.Time
	ProcessedAt *time.Time
}

// ScanState is the durable progress of one of the poller's list scans: the
// lower bound of the scan (created_from or finished_from), the page to
// resume at when a scan was cut short by the budget, and when the scan
// began (the next cursor once it completes).
type ScanState struct {
	Cursor    *time.Time `json:"cursor"`
	Page      int        `json:"page,omitempty"`
	StartedAt *time.Time `json:"started_at,omitempty"`
}

// PollState is the poller's durable state for one organization.
type PollState struct {
	OrgID    int64     `json:"-"`
	Created  ScanState `json:"created"`
	Finished ScanState `json:"finished"`
	// PipelinesAt is when the pipeline list was last refreshed.
	PipelinesAt   *time.Time `json:"pipelines_at"`
	LastRunAt     *time.Time `json:"last_run_at"`
	LastSuccessAt *time.Time `json:"last_success_at"`
	LastError     string     `json:"last_error,omitempty"`
	LastErrorAt   *time.Time `json:"last_error_at,omitempty"`
	// Failures counts consecutive failed runs; at the breaker threshold the
	// organization is skipped until BreakerUntil.
	Failures     int        `json:"consecutive_failures"`
	BreakerUntil *time.Time `json:"breaker_open_until,omitempty"`
	// BackoffUntil is when the next call may be made after a 429 or 5xx.
	BackoffUntil *time.Time `json:"backoff_until,omitempty"`
	LagSeconds   float64    `json:"lag_seconds"`
	BudgetLimit  int        `json:"budget_limit"`
	BudgetRemain int        `json:"budget_remaining"`
	OrgLimit     int        `json:"org_limit"`
	OrgRemain    int        `json:"org_remaining"`
	Calls        int64      `json:"api_calls"`
	BuildsSeen   int64      `json:"builds_seen"`
	// Backfill progress: the window being fetched and the next page.
	Backfill *BackfillState `json:"backfill,omitempty"`
}

// BackfillState is a resumable backfill's progress.
type BackfillState struct {
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	Page   int       `json:"page"`
	Pages  int       `json:"pages"`
	Builds int       `json:"builds"`
	Done   bool      `json:"done"`
}
