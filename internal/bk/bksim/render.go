package bksim

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"maps"
	"path"
	"strings"
	"time"
)

// REST timestamps are ISO-8601 with milliseconds; webhook payloads and the
// access-token response use "2006-01-02 15:04:05 UTC" (reference §5, §10.4).
const (
	restTime = "2006-01-02T15:04:05.000Z"
	hookTime = "2006-01-02 15:04:05 UTC"
)

type renderer struct {
	base, web string
	hook      bool // webhook payload: other time format, no jobs in builds
	canEdit   bool // token may see provider webhook_url
}

func (rd renderer) t(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	f := restTime
	if rd.hook {
		f = hookTime
	}
	s := t.UTC().Format(f)
	return &s
}

func (rd renderer) tp(t *time.Time) *string {
	if t == nil {
		return nil
	}
	return rd.t(*t)
}

func (rd renderer) api(format string, args ...any) string {
	return rd.base + fmt.Sprintf(format, args...)
}

type orgJSON struct {
	ID           string  `json:"id"`
	GraphQLID    string  `json:"graphql_id"`
	URL          string  `json:"url"`
	WebURL       string  `json:"web_url"`
	Name         string  `json:"name"`
	Slug         string  `json:"slug"`
	PipelinesURL string  `json:"pipelines_url"`
	AgentsURL    string  `json:"agents_url"`
	EmojisURL    string  `json:"emojis_url"`
	CreatedAt    *string `json:"created_at"`
}

func (rd renderer) org(o *org) orgJSON {
	u := rd.api("/v2/organizations/%s", o.slug)
	return orgJSON{o.id, graphqlID("Organization", o.id), u, rd.web + "/" + o.slug, o.name, o.slug, u + "/pipelines", u + "/agents", u + "/emojis", rd.t(o.created)}
}

type userJSON struct {
	ID        string  `json:"id"`
	GraphQLID string  `json:"graphql_id"`
	Name      string  `json:"name"`
	Email     string  `json:"email"`
	AvatarURL string  `json:"avatar_url"`
	CreatedAt *string `json:"created_at"`
}

func (rd renderer) user(u *user) *userJSON {
	if u == nil {
		return nil
	}
	sum := sha1.Sum([]byte(strings.ToLower(u.email)))
	return &userJSON{u.id, graphqlID("User", u.id), u.name, u.email, "https://www.gravatar.com/avatar/" + hex.EncodeToString(sum[:16]), rd.t(u.created)}
}

type providerJSON struct {
	ID         string         `json:"id"`
	WebhookURL string         `json:"webhook_url"`
	Settings   map[string]any `json:"settings"`
}

type pipelineJSON struct {
	ID                              string            `json:"id"`
	GraphQLID                       string            `json:"graphql_id"`
	URL                             string            `json:"url"`
	WebURL                          string            `json:"web_url"`
	Name                            string            `json:"name"`
	Description                     *string           `json:"description"`
	Slug                            string            `json:"slug"`
	Repository                      string            `json:"repository"`
	ClusterID                       *string           `json:"cluster_id"`
	PipelineTemplateUUID            *string           `json:"pipeline_template_uuid"`
	BranchConfiguration             *string           `json:"branch_configuration"`
	DefaultBranch                   string            `json:"default_branch"`
	SkipQueuedBranchBuilds          bool              `json:"skip_queued_branch_builds"`
	SkipQueuedBranchBuildsFilter    *string           `json:"skip_queued_branch_builds_filter"`
	CancelRunningBranchBuilds       bool              `json:"cancel_running_branch_builds"`
	CancelRunningBranchBuildsFilter *string           `json:"cancel_running_branch_builds_filter"`
	AllowRebuilds                   bool              `json:"allow_rebuilds"`
	Provider                        providerJSON      `json:"provider"`
	BuildsURL                       string            `json:"builds_url"`
	BadgeURL                        string            `json:"badge_url"`
	CreatedBy                       *userJSON         `json:"created_by"`
	CreatedAt                       *string           `json:"created_at"`
	ArchivedAt                      *string           `json:"archived_at"`
	Env                             map[string]string `json:"env"`
	ScheduledBuildsCount            int               `json:"scheduled_builds_count"`
	RunningBuildsCount              int               `json:"running_builds_count"`
	ScheduledJobsCount              int               `json:"scheduled_jobs_count"`
	RunningJobsCount                int               `json:"running_jobs_count"`
	WaitingJobsCount                int               `json:"waiting_jobs_count"`
	Visibility                      string            `json:"visibility"`
	Tags                            []string          `json:"tags"`
	Configuration                   string            `json:"configuration,omitempty"`
	Steps                           []map[string]any  `json:"steps"`
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// repoPath turns git@github.com:acme/web.git or https://github.com/acme/web.git
// into acme/web.
func repoPath(repo string) string {
	r := strings.TrimSuffix(repo, ".git")
	if i := strings.Index(r, "://"); i >= 0 {
		r = r[i+3:]
		if j := strings.IndexByte(r, '/'); j >= 0 {
			r = r[j+1:]
		}
	} else if i := strings.IndexByte(r, ':'); i >= 0 {
		r = r[i+1:]
	}
	return r
}

func (rd renderer) pipeline(p *pipeline, builds []*build) pipelineJSON {
	u := rd.api("/v2/organizations/%s/pipelines/%s", p.org.slug, p.slug)
	settings := map[string]any{}
	if p.provider.ID == "github" || p.provider.ID == "github_enterprise" {
		settings = map[string]any{
			"trigger_mode": "code", "build_pull_requests": true, "pull_request_branch_filter_enabled": false,
			"skip_builds_for_existing_commits": false, "skip_pull_request_builds_for_existing_commits": true,
			"build_pull_request_ready_for_review": false, "build_pull_request_labels_changed": false,
			"build_pull_request_forks": false, "prefix_pull_request_fork_branch_names": true, "build_branches": true,
			"build_tags": false, "cancel_deleted_branch_builds": false, "publish_commit_status": true,
			"publish_commit_status_per_step": false, "separate_pull_request_statuses": false, "publish_blocked_as_pending": false,
			"use_step_key_as_commit_status": false, "filter_enabled": false,
		}
	}
	maps.Copy(settings, p.provider.Settings)
	settings["repository"] = repoPath(p.repository)
	hookURL := ""
	if rd.canEdit {
		sum := sha1.Sum([]byte(p.id))
		hookURL = "https://webhook.buildkite.com/deliver/" + hex.EncodeToString(sum[:12])
	}
	sum := sha1.Sum([]byte("badge" + p.id))
	steps := p.steps
	if steps == nil {
		steps = []map[string]any{}
	}
	var counts [5]int
	for _, b := range builds {
		if b.pipeline != p {
			continue
		}
		switch b.state {
		case "scheduled":
			counts[0]++
		case "running", "failing":
			counts[1]++
		}
		for _, j := range b.jobs {
			switch j.state {
			case "scheduled", "assigned", "accepted":
				counts[2]++
			case "running":
				counts[3]++
			case "waiting":
				counts[4]++
			}
		}
	}
	return pipelineJSON{
		ID: p.id, GraphQLID: graphqlID("Pipeline", p.id), URL: u, WebURL: rd.web + "/" + p.org.slug + "/" + p.slug,
		Name: p.name, Description: strp(p.description), Slug: p.slug, Repository: p.repository, DefaultBranch: p.defaultBranch,
		AllowRebuilds: true, Provider: providerJSON{ID: p.provider.ID, WebhookURL: hookURL, Settings: settings},
		BuildsURL: u + "/builds", BadgeURL: "https://badge.buildkite.com/" + hex.EncodeToString(sum[:]) + ".svg",
		CreatedBy: rd.user(p.createdBy), CreatedAt: rd.t(p.created), Env: p.env,
		ScheduledBuildsCount: counts[0], RunningBuildsCount: counts[1], ScheduledJobsCount: counts[2], RunningJobsCount: counts[3], WaitingJobsCount: counts[4],
		Visibility: p.visibility, Tags: p.tags, Configuration: p.configuration, Steps: steps,
	}
}

type buildJSON struct {
	ID             string            `json:"id"`
	GraphQLID      string            `json:"graphql_id"`
	URL            string            `json:"url"`
	WebURL         string            `json:"web_url"`
	Number         int               `json:"number"`
	State          string            `json:"state"`
	CancelReason   *string           `json:"cancel_reason"`
	Blocked        bool              `json:"blocked"`
	BlockedState   string            `json:"blocked_state"`
	Message        string            `json:"message"`
	Commit         string            `json:"commit"`
	Branch         string            `json:"branch"`
	Tag            *string           `json:"tag"`
	Env            map[string]string `json:"env"`
	Source         string            `json:"source"`
	Author         *AuthorSpec       `json:"author"`
	Creator        *userJSON         `json:"creator"`
	CreatedAt      *string           `json:"created_at"`
	ScheduledAt    *string           `json:"scheduled_at"`
	StartedAt      *string           `json:"started_at"`
	FailingAt      *string           `json:"failing_at,omitempty"`
	FinishedAt     *string           `json:"finished_at"`
	MetaData       map[string]string `json:"meta_data"`
	PullRequest    *PullRequestSpec  `json:"pull_request"`
	MergeQueue     *struct{}         `json:"merge_queue"`
	RebuiltFrom    *struct{}         `json:"rebuilt_from"`
	JobStateCounts *jobStateCounts   `json:"job_state_counts,omitempty"`
	Pipeline       *pipelineJSON     `json:"pipeline,omitempty"`
	Jobs           *[]any            `json:"jobs,omitempty"`
	TestEngine     *testEngineJSON   `json:"test_engine,omitempty"`
}

type jobStateCounts struct {
	Total  int            `json:"total"`
	States map[string]int `json:"states"`
}

type testEngineJSON struct {
	Runs []testEngineRunJSON `json:"runs"`
}

type testEngineRunJSON struct {
	ID    string `json:"id"`
	Suite struct {
		ID   string `json:"id"`
		Slug string `json:"slug"`
	} `json:"suite"`
}

type buildOpts struct {
	excludeJobs, excludePipeline, includeRetried, testEngine, counts bool
	jobStates                                                        []string
	all                                                              []*build
}

func (rd renderer) build(b *build, o buildOpts) buildJSON {
	p := b.pipeline
	u := rd.api("/v2/organizations/%s/pipelines/%s/builds/%d", p.org.slug, p.slug, b.number)
	env := b.env
	if env == nil {
		env = map[string]string{}
	}
	meta := b.meta
	if meta == nil {
		meta = map[string]string{}
	}
	out := buildJSON{
		ID: b.id, GraphQLID: graphqlID("Build", b.id), URL: u, WebURL: fmt.Sprintf("%s/%s/%s/builds/%d", rd.web, p.org.slug, p.slug, b.number),
		Number: b.number, State: b.state, Blocked: b.blocked, Message: b.message, Commit: b.commit, Branch: b.branch, Tag: strp(b.tag),
		Env: env, Source: b.source, Author: b.author, Creator: rd.user(b.creator), CreatedAt: rd.t(b.created), ScheduledAt: rd.t(b.scheduled),
		StartedAt: rd.tp(b.started), FailingAt: rd.tp(b.failing), FinishedAt: rd.tp(b.finished), MetaData: meta, PullRequest: b.pr,
	}
	if rd.hook {
		// Webhook payloads carry no jobs (reference §10.4).
		o.excludeJobs = true
	}
	if !o.excludePipeline {
		pj := rd.pipeline(p, o.all)
		out.Pipeline = &pj
	}
	if !o.excludeJobs {
		jobs := []any{}
		for _, j := range visibleJobs(b, o.includeRetried) {
			if len(o.jobStates) > 0 && !matchesJobState(j, o.jobStates) {
				continue
			}
			jobs = append(jobs, rd.job(j))
		}
		out.Jobs = &jobs
	}
	if o.counts {
		c := &jobStateCounts{States: map[string]int{}}
		for _, j := range visibleJobs(b, false) {
			c.Total++
			c.States[effectiveJobState(j)]++
		}
		out.JobStateCounts = c
	}
	if o.testEngine {
		te := &testEngineJSON{Runs: []testEngineRunJSON{}}
		for _, r := range b.runs {
			var rj testEngineRunJSON
			rj.ID = r.id
			rj.Suite.ID, rj.Suite.Slug = r.suite.id, r.suite.slug
			te.Runs = append(te.Runs, rj)
		}
		out.TestEngine = te
	}
	return out
}

// visibleJobs drops jobs that were retried unless asked for every attempt.
func visibleJobs(b *build, includeRetried bool) []*job {
	var out []*job
	for _, j := range b.jobs {
		if j.retried && !includeRetried {
			continue
		}
		out = append(out, j)
	}
	return out
}

// effectiveJobState counts a finished waiter as passed, as job_states[] does.
func effectiveJobState(j *job) string {
	if j.typ == "waiter" && j.state == "finished" {
		return "passed"
	}
	return j.state
}

func matchesJobState(j *job, states []string) bool {
	for _, s := range states {
		if effectiveJobState(j) == s {
			return true
		}
	}
	return false
}

type agentJSON struct {
	ID                string   `json:"id"`
	GraphQLID         string   `json:"graphql_id"`
	URL               string   `json:"url"`
	WebURL            string   `json:"web_url"`
	Name              string   `json:"name"`
	ConnectionState   string   `json:"connection_state"`
	Hostname          string   `json:"hostname"`
	IPAddress         string   `json:"ip_address"`
	UserAgent         string   `json:"user_agent"`
	Version           string   `json:"version"`
	Creator           *string  `json:"creator"`
	CreatedAt         *string  `json:"created_at"`
	Job               *string  `json:"job"`
	LastJobFinishedAt *string  `json:"last_job_finished_at"`
	Priority          int      `json:"priority"`
	MetaData          []string `json:"meta_data"`
}

type scriptJobJSON struct {
	ID                 string            `json:"id"`
	GraphQLID          string            `json:"graphql_id"`
	Type               string            `json:"type"`
	Name               string            `json:"name"`
	StepKey            *string           `json:"step_key"`
	GroupKey           *string           `json:"group_key"`
	Step               map[string]any    `json:"step"`
	Priority           map[string]int    `json:"priority"`
	AgentQueryRules    []string          `json:"agent_query_rules"`
	State              string            `json:"state"`
	BuildURL           string            `json:"build_url"`
	WebURL             string            `json:"web_url"`
	LogURL             string            `json:"log_url"`
	RawLogURL          string            `json:"raw_log_url"`
	ArtifactsURL       string            `json:"artifacts_url"`
	Command            string            `json:"command"`
	SoftFailed         bool              `json:"soft_failed"`
	ExitStatus         *int              `json:"exit_status"`
	Signal             *string           `json:"signal"`
	SignalReason       *string           `json:"signal_reason"`
	ArtifactPaths      string            `json:"artifact_paths"`
	Agent              *agentJSON        `json:"agent"`
	CreatedAt          *string           `json:"created_at"`
	ScheduledAt        *string           `json:"scheduled_at"`
	RunnableAt         *string           `json:"runnable_at"`
	StartedAt          *string           `json:"started_at"`
	FinishedAt         *string           `json:"finished_at"`
	ExpiredAt          *string           `json:"expired_at"`
	Retried            bool              `json:"retried"`
	RetriedInJobID     *string           `json:"retried_in_job_id"`
	RetriesCount       *int              `json:"retries_count"`
	RetryType          *string           `json:"retry_type"`
	RetrySource        map[string]any    `json:"retry_source"`
	ParallelGroupIndex *int              `json:"parallel_group_index"`
	ParallelGroupTotal *int              `json:"parallel_group_total"`
	Matrix             map[string]string `json:"matrix"`
	ClusterID          *string           `json:"cluster_id"`
	ClusterURL         *string           `json:"cluster_url"`
	ClusterQueueID     *string           `json:"cluster_queue_id"`
	ClusterQueueURL    *string           `json:"cluster_queue_url"`
}

type waiterJobJSON struct {
	ID        string `json:"id"`
	GraphQLID string `json:"graphql_id"`
	Type      string `json:"type"`
}

type manualJobJSON struct {
	ID          string    `json:"id"`
	GraphQLID   string    `json:"graphql_id"`
	Type        string    `json:"type"`
	Label       string    `json:"label"`
	State       string    `json:"state"`
	WebURL      *string   `json:"web_url"`
	UnblockedBy *userJSON `json:"unblocked_by"`
	UnblockedAt *string   `json:"unblocked_at"`
	Unblockable bool      `json:"unblockable"`
	UnblockURL  string    `json:"unblock_url"`
}

func (rd renderer) jobURL(j *job) string {
	p := j.build.pipeline
	return rd.api("/v2/organizations/%s/pipelines/%s/builds/%d/jobs/%s", p.org.slug, p.slug, j.build.number, j.id)
}

func (rd renderer) job(j *job) any {
	b := j.build
	p := b.pipeline
	buildURL := rd.api("/v2/organizations/%s/pipelines/%s/builds/%d", p.org.slug, p.slug, b.number)
	webURL := fmt.Sprintf("%s/%s/%s/builds/%d#%s", rd.web, p.org.slug, p.slug, b.number, j.id)
	switch j.typ {
	case "waiter":
		return waiterJobJSON{j.id, graphqlID("JobTypeWait", j.id), "waiter"}
	case "manual":
		return manualJobJSON{ID: j.id, GraphQLID: graphqlID("JobTypeBlock", j.id), Type: "manual", Label: j.name, State: j.state,
			Unblockable: j.state == "blocked", UnblockURL: rd.jobURL(j) + "/unblock"}
	}
	ju := rd.jobURL(j)
	out := scriptJobJSON{
		ID: j.id, GraphQLID: graphqlID("JobTypeCommand", j.id), Type: j.typ, Name: j.name, StepKey: strp(j.key),
		Step: map[string]any{"id": stableID("step", j.build.pipeline.id, j.key), "signature": nil}, Priority: map[string]int{"number": 0},
		AgentQueryRules: j.agentRules, State: j.state, BuildURL: buildURL, WebURL: webURL, LogURL: ju + "/log", RawLogURL: ju + "/log.txt",
		ArtifactsURL: ju + "/artifacts", Command: j.command, SoftFailed: j.softFailed, ExitStatus: j.exit, SignalReason: strp(j.signalReason),
		CreatedAt: rd.t(j.created), ScheduledAt: rd.t(j.scheduled), RunnableAt: rd.tp(j.runnable), StartedAt: rd.tp(j.started), FinishedAt: rd.tp(j.finished),
		Retried: j.retried, RetryType: strp(j.retryType), ParallelGroupIndex: j.pgIndex, ParallelGroupTotal: j.pgTotal, Matrix: j.matrix,
	}
	if out.AgentQueryRules == nil {
		out.AgentQueryRules = []string{}
	}
	if j.retriedIn != nil {
		out.RetriedInJobID = &j.retriedIn.id
	}
	if j.retrySource != nil {
		n := j.retriesCount
		out.RetriesCount = &n
		src := map[string]any{"job_id": j.retrySource.id, "retry_type": j.retryType}
		if rd.hook {
			src["retried_by"] = nil
		}
		out.RetrySource = src
	}
	if j.started != nil {
		h := sha1.Sum([]byte(j.id))
		n := 1 + int(h[0])%12
		id := stableID("agent", p.org.slug, fmt.Sprint(n))
		name := fmt.Sprintf("ci-agent-%d", n)
		out.Agent = &agentJSON{
			ID: id, GraphQLID: graphqlID("Agent", id), URL: rd.api("/v2/organizations/%s/agents/%s", p.org.slug, id),
			WebURL: fmt.Sprintf("%s/organizations/%s/agents/%s", rd.web, p.org.slug, id), Name: name, ConnectionState: "connected",
			Hostname: name, IPAddress: fmt.Sprintf("10.0.%d.%d", h[1], 1+int(h[2])%250), UserAgent: "buildkite-agent/3.97.1.10483 (linux; amd64)",
			Version: "3.97.1", CreatedAt: rd.t(p.org.created.Add(24 * time.Hour)), Priority: 0, MetaData: j.agentRules,
		}
	}
	return out
}

type artifactJSON struct {
	ID           string  `json:"id"`
	JobID        string  `json:"job_id"`
	URL          string  `json:"url"`
	DownloadURL  string  `json:"download_url"`
	State        string  `json:"state"`
	Path         string  `json:"path"`
	Dirname      string  `json:"dirname"`
	Filename     string  `json:"filename"`
	MimeType     string  `json:"mime_type"`
	FileSize     int64   `json:"file_size"`
	GlobPath     *string `json:"glob_path"`
	OriginalPath *string `json:"original_path"`
	SHA1Sum      string  `json:"sha1sum"`
}

func (rd renderer) artifact(a *artifact) artifactJSON {
	u := rd.jobURL(a.job) + "/artifacts/" + a.id
	return artifactJSON{ID: a.id, JobID: a.job.id, URL: u, DownloadURL: u + "/download", State: a.state, Path: a.path,
		Dirname: path.Dir(a.path), Filename: path.Base(a.path), MimeType: a.mime, FileSize: a.size, SHA1Sum: a.sha1}
}

type annotationJSON struct {
	ID        string  `json:"id"`
	Context   string  `json:"context"`
	Style     string  `json:"style"`
	Scope     string  `json:"scope"`
	JobID     *string `json:"job_id"`
	Priority  int     `json:"priority"`
	BodyHTML  string  `json:"body_html"`
	CreatedAt *string `json:"created_at"`
	UpdatedAt *string `json:"updated_at"`
}

func (rd renderer) annotation(a *annotation) annotationJSON {
	out := annotationJSON{ID: a.id, Context: a.context, Style: a.style, Scope: a.scope, Priority: a.priority, BodyHTML: a.body, CreatedAt: rd.t(a.created), UpdatedAt: rd.t(a.created)}
	if a.job != nil {
		out.JobID = &a.job.id
	}
	return out
}

type teamJSON struct {
	ID          string    `json:"id"`
	GraphQLID   string    `json:"graphql_id"`
	Name        string    `json:"name"`
	Slug        string    `json:"slug"`
	Description string    `json:"description"`
	Privacy     string    `json:"privacy"`
	Default     bool      `json:"default"`
	CreatedAt   *string   `json:"created_at"`
	CreatedBy   *userJSON `json:"created_by"`
}

func (rd renderer) team(t *team) teamJSON {
	return teamJSON{t.id, graphqlID("Team", t.id), t.name, t.slug, t.description, t.privacy, t.isDefault, rd.t(t.created), rd.user(t.createdBy)}
}
