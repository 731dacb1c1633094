package bk

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// Time is a Buildkite timestamp: REST answers use ISO-8601 with
// milliseconds, webhook payloads "2006-01-02 15:04:05 UTC". null and ""
// decode to the zero time.
type Time struct{ time.Time }

// timeLayouts are the formats Buildkite sends, most common first.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05 MST", "2006-01-02 15:04:05 -0700", "2006-01-02T15:04:05Z0700"}

// UnmarshalJSON accepts every timestamp format Buildkite sends.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	if s == "" {
		t.Time = time.Time{}
		return nil
	}
	for _, l := range timeLayouts {
		if v, err := time.Parse(l, s); err == nil {
			t.Time = v.UTC()
			return nil
		}
	}
	return fmt.Errorf("timestamp %q: unknown format", s)
}

func (t Time) ptr() *time.Time {
	if t.IsZero() {
		return nil
	}
	v := t.Time
	return &v
}

// Person is a commit author or build creator. Buildkite sometimes sends an
// author as a bare email string.
type Person struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// UnmarshalJSON accepts an object, a plain string or null.
func (p *Person) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &p.Email)
	}
	var v struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("person: %w", err)
	}
	p.Name, p.Email = v.Name, v.Email
	return nil
}

// PipelineJSON is a pipeline as the REST API and webhooks send it.
type PipelineJSON struct {
	ID            string `json:"id"`
	Slug          string `json:"slug"`
	Name          string `json:"name"`
	WebURL        string `json:"web_url"`
	Repository    string `json:"repository"`
	DefaultBranch string `json:"default_branch"`
	Provider      struct {
		ID       string         `json:"id"`
		Settings map[string]any `json:"settings"`
	} `json:"provider"`
}

// CI maps the pipeline to the domain type (without repository mapping,
// which ingest adds).
func (p PipelineJSON) CI() ci.Pipeline {
	out := ci.Pipeline{Slug: p.Slug, Name: p.Name, ExtID: p.ID, Repository: p.Repository, DefaultBranch: p.DefaultBranch,
		WebURL: p.WebURL, Provider: p.Provider.ID}
	if v, ok := p.Provider.Settings["publish_commit_status"].(bool); ok {
		out.PublishCommitStatus = &v
	}
	if v, ok := p.Provider.Settings["build_pull_requests"].(bool); ok {
		out.BuildPullRequests = &v
	}
	return out
}

// JobJSON is a job as the REST API and webhooks send it.
type JobJSON struct {
	ID             string `json:"id"`
	Type           string `json:"type"`
	Name           string `json:"name"`
	Label          string `json:"label"`
	StepKey        string `json:"step_key"`
	State          string `json:"state"`
	WebURL         string `json:"web_url"`
	ExitStatus     *int   `json:"exit_status"`
	SoftFailed     bool   `json:"soft_failed"`
	Retried        bool   `json:"retried"`
	RetriedInJobID string `json:"retried_in_job_id"`
	RetryType      string `json:"retry_type"`
	RetrySource    *struct {
		JobID     string `json:"job_id"`
		RetryType string `json:"retry_type"`
	} `json:"retry_source"`
	ParallelGroupIndex *int `json:"parallel_group_index"`
	ParallelGroupTotal *int `json:"parallel_group_total"`
	StartedAt          Time `json:"started_at"`
	FinishedAt         Time `json:"finished_at"`
}

// CI maps the job to the domain type.
func (j JobJSON) CI() ci.Job {
	out := ci.Job{ExtID: j.ID, Type: j.Type, Name: j.Name, StepKey: j.StepKey, State: j.State, ExitStatus: j.ExitStatus,
		SoftFailed: j.SoftFailed, Retried: j.Retried, RetriedBy: j.RetriedInJobID, RetryType: j.RetryType,
		ParallelIndex: j.ParallelGroupIndex, ParallelTotal: j.ParallelGroupTotal, WebURL: j.WebURL,
		StartedAt: j.StartedAt.ptr(), FinishedAt: j.FinishedAt.ptr()}
	if out.Name == "" {
		out.Name = j.Label
	}
	if j.RetrySource != nil {
		out.RetryOf = j.RetrySource.JobID
		if out.RetryType == "" {
			out.RetryType = j.RetrySource.RetryType
		}
	}
	if out.Type == "" {
		out.Type = "script"
	}
	return out
}

// BuildJSON is a build as the REST API and webhooks send it.
type BuildJSON struct {
	ID          string `json:"id"`
	URL         string `json:"url"`
	WebURL      string `json:"web_url"`
	Number      int    `json:"number"`
	State       string `json:"state"`
	Blocked     bool   `json:"blocked"`
	Message     string `json:"message"`
	Commit      string `json:"commit"`
	Branch      string `json:"branch"`
	Tag         string `json:"tag"`
	Source      string `json:"source"`
	Author      Person `json:"author"`
	Creator     Person `json:"creator"`
	CreatedAt   Time   `json:"created_at"`
	ScheduledAt Time   `json:"scheduled_at"`
	StartedAt   Time   `json:"started_at"`
	FinishedAt  Time   `json:"finished_at"`
	PullRequest *struct {
		ID         string `json:"id"`
		Base       string `json:"base"`
		Repository string `json:"repository"`
	} `json:"pull_request"`
	RebuiltFrom *struct {
		Number int `json:"number"`
	} `json:"rebuilt_from"`
	Pipeline *PipelineJSON `json:"pipeline"`
	Jobs     []JobJSON     `json:"jobs"`
}

// PipelineSlug returns the build's pipeline slug: from the embedded
// pipeline, or else from the build's API or web URL.
func (b BuildJSON) PipelineSlug() string {
	if b.Pipeline != nil && b.Pipeline.Slug != "" {
		return b.Pipeline.Slug
	}
	if u, err := url.Parse(b.URL); err == nil {
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		for i := 0; i+1 < len(parts); i++ {
			if parts[i] == "pipelines" {
				return parts[i+1]
			}
		}
	}
	if u, err := url.Parse(b.WebURL); err == nil {
		// https://buildkite.com/<org>/<pipeline>/builds/<n>
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		if len(parts) >= 4 && parts[2] == "builds" {
			return parts[1]
		}
	}
	return ""
}

// CI maps the build to the domain type (without repository mapping, which
// ingest adds). Jobs are mapped separately with CIJobs.
func (b BuildJSON) CI() ci.Build {
	out := ci.Build{Pipeline: b.PipelineSlug(), Number: b.Number, ExtID: b.ID, State: b.State, Blocked: b.Blocked,
		Branch: b.Branch, Commit: b.Commit, Message: b.Message, Tag: b.Tag, TriggerSource: b.Source,
		AuthorName: b.Author.Name, AuthorEmail: b.Author.Email, CreatorName: b.Creator.Name, CreatorEmail: b.Creator.Email,
		WebURL: b.WebURL, CreatedAt: b.CreatedAt.ptr(), ScheduledAt: b.ScheduledAt.ptr(), StartedAt: b.StartedAt.ptr(),
		FinishedAt: b.FinishedAt.ptr()}
	if pr := b.PullRequest; pr != nil && pr.ID != "" {
		if n, err := strconv.Atoi(pr.ID); err == nil && n > 0 {
			out.PullRequest = n
		}
		out.BaseBranch, out.PRRepository = pr.Base, pr.Repository
	}
	if b.RebuiltFrom != nil {
		out.RebuiltFrom = b.RebuiltFrom.Number
	}
	return out
}

// CIJobs maps the build's jobs.
func (b BuildJSON) CIJobs() []ci.Job {
	out := make([]ci.Job, 0, len(b.Jobs))
	for _, j := range b.Jobs {
		if j.ID != "" {
			out = append(out, j.CI())
		}
	}
	return out
}

// BuildListOptions filters an organization-wide build list.
type BuildListOptions struct {
	CreatedFrom  time.Time // created_from, when not zero
	FinishedFrom time.Time // finished_from, when not zero
	CreatedTo    time.Time // created_to, when not zero
	State        []string  // state[]
	ExcludeJobs  bool
	Page         int // 1 when 0
	PerPage      int // 100 when 0
}

// BuildPage is one page of a build list.
type BuildPage struct {
	Builds []BuildJSON
	// NextPage is the next page number, 0 on the last page; LastPage the
	// number of the last page when the answer says so.
	NextPage int
	LastPage int
}

// ListBuilds lists one page of an organization's builds, newest first
// (GET /v2/organizations/{org}/builds, scope read_builds). The pipeline
// object is always excluded; ListPipelines supplies it.
func (c *Client) ListBuilds(ctx context.Context, org string, o BuildListOptions) (BuildPage, error) {
	q := url.Values{}
	q.Set("exclude_pipeline", "true")
	if o.ExcludeJobs {
		q.Set("exclude_jobs", "true")
	}
	if !o.CreatedFrom.IsZero() {
		q.Set("created_from", o.CreatedFrom.UTC().Format(time.RFC3339))
	}
	if !o.CreatedTo.IsZero() {
		q.Set("created_to", o.CreatedTo.UTC().Format(time.RFC3339))
	}
	if !o.FinishedFrom.IsZero() {
		q.Set("finished_from", o.FinishedFrom.UTC().Format(time.RFC3339))
	}
	for _, s := range o.State {
		q.Add("state[]", s)
	}
	q.Set("page", strconv.Itoa(max(o.Page, 1)))
	q.Set("per_page", strconv.Itoa(perPage(o.PerPage)))
	var page BuildPage
	link, err := c.getJSONLink(ctx, "/v2/organizations/"+url.PathEscape(org)+"/builds", q, &page.Builds)
	if err != nil {
		return BuildPage{}, fmt.Errorf("list builds of %q: %w", org, err)
	}
	page.NextPage, page.LastPage = LinkPage(link, "next"), LinkPage(link, "last")
	return page, nil
}

// GetBuild returns one build with its jobs, retried ones included (GET
// .../pipelines/{p}/builds/{n}?include_retried_jobs=true, scope read_builds).
func (c *Client) GetBuild(ctx context.Context, org, pipeline string, number int) (BuildJSON, error) {
	q := url.Values{"include_retried_jobs": {"true"}, "exclude_pipeline": {"true"}}
	var b BuildJSON
	_, err := c.getJSON(ctx, "/v2/organizations/"+url.PathEscape(org)+"/pipelines/"+url.PathEscape(pipeline)+
		"/builds/"+strconv.Itoa(number), q, &b)
	if err != nil {
		return BuildJSON{}, fmt.Errorf("get build %s#%d: %w", pipeline, number, err)
	}
	return b, nil
}

// PipelinePage is one page of a pipeline list.
type PipelinePage struct {
	Pipelines []PipelineJSON
	NextPage  int
}

// ListPipelines lists one page of an organization's pipelines (GET
// /v2/organizations/{org}/pipelines, scope read_pipelines).
func (c *Client) ListPipelines(ctx context.Context, org string, page int) (PipelinePage, error) {
	q := url.Values{"page": {strconv.Itoa(max(page, 1))}, "per_page": {"100"}}
	var p PipelinePage
	link, err := c.getJSONLink(ctx, "/v2/organizations/"+url.PathEscape(org)+"/pipelines", q, &p.Pipelines)
	if err != nil {
		return PipelinePage{}, fmt.Errorf("list pipelines of %q: %w", org, err)
	}
	p.NextPage = LinkPage(link, "next")
	return p, nil
}

func perPage(n int) int {
	if n <= 0 || n > 100 {
		return 100
	}
	return n
}

// maxJSONBody bounds a decoded list or build answer.
const maxJSONBody = 32 << 20

// getJSON GETs path?q under the call deadline, decodes the answer into v and
// returns the next page number from the Link header (0 when none).
func (c *Client) getJSON(ctx context.Context, path string, q url.Values, v any) (int, error) {
	link, err := c.getJSONLink(ctx, path, q, v)
	return LinkPage(link, "next"), err
}

// NextPage returns the page number of a Link header's rel="next" entry, or 0.
func NextPage(link string) int { return LinkPage(link, "next") }

// getJSONLink is getJSON returning the whole Link header.
func (c *Client) getJSONLink(ctx context.Context, path string, q url.Values, v any) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := *c.base
	u.Path = c.base.Path + path
	u.RawPath = ""
	u.RawQuery = q.Encode()
	resp, err := c.doRaw(ctx, http.MethodGet, u.String(), http.Header{"Accept": {"application/json"}})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(&limitedReader{r: resp.Body, n: maxJSONBody})
	if err := dec.Decode(v); err != nil {
		return "", c.normalise(ctx, &UnreachableError{Reason: ReasonBadResponse, Err: fmt.Errorf("decode answer: %w", err)})
	}
	return resp.Header.Get("Link"), nil
}

// limitedReader fails instead of truncating silently.
type limitedReader struct {
	r interface{ Read([]byte) (int, error) }
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("answer larger than %d bytes", maxJSONBody)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// LinkPage returns the page number of the entry with the given rel ("next",
// "last"...) of a Link header, or 0. Entries may come in any order.
func LinkPage(link, rel string) int {
	for _, entry := range strings.Split(link, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(entry), ";")
		if !ok {
			continue
		}
		isNext := false
		for _, p := range strings.Split(params, ";") {
			if strings.ReplaceAll(strings.TrimSpace(p), " ", "") == `rel="`+rel+`"` {
				isNext = true
			}
		}
		if !isNext {
			continue
		}
		target = strings.TrimSpace(target)
		if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
			continue
		}
		u, err := url.Parse(target[1 : len(target)-1])
		if err != nil {
			continue
		}
		if n, err := strconv.Atoi(u.Query().Get("page")); err == nil && n > 0 {
			return n
		}
	}
	return 0
}
