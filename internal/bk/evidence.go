package bk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
)

// maxEvidencePages bounds how many pages an evidence list follows, so a huge
// build cannot make one analysis spend the whole rate-limit budget.
const maxEvidencePages = 10

// DefaultMaxArtifactBytes is the default cap of DownloadArtifact.
const DefaultMaxArtifactBytes = 8 << 20

// Artifact is a file a job uploaded (reference §8.1).
type Artifact struct {
	ID       string `json:"id"`
	JobID    string `json:"job_id"`
	State    string `json:"state"`
	Path     string `json:"path"`
	Filename string `json:"filename"`
	MimeType string `json:"mime_type"`
	FileSize int64  `json:"file_size"`
}

// TestEngineRun links a build to a Test Engine run of a suite.
type TestEngineRun struct {
	ID    string `json:"id"`
	Suite struct {
		ID   string `json:"id"`
		Slug string `json:"slug"`
	} `json:"suite"`
}

// FailedExecution is one failed test execution of a Test Engine run
// (reference §9).
type FailedExecution struct {
	ExecutionID     string  `json:"execution_id"`
	RunID           string  `json:"run_id"`
	TestID          string  `json:"test_id"`
	TestName        string  `json:"test_name"`
	Location        string  `json:"location"`
	FailureReason   string  `json:"failure_reason"`
	Duration        float64 `json:"duration"`
	FailureExpanded []struct {
		Backtrace []string `json:"backtrace"`
		Expanded  []string `json:"expanded"`
	} `json:"failure_expanded"`
}

// SuiteTest is a test of a Test Engine suite.
type SuiteTest struct {
	ID       string `json:"id"`
	Scope    string `json:"scope"`
	Name     string `json:"name"`
	Location string `json:"location"`
	FileName string `json:"file_name"`
}

// jobPath builds .../organizations/{org}/pipelines/{p}/builds/{n}/jobs/{id}.
func jobPath(org, pipeline string, build int, jobID string) string {
	return "/v2/organizations/" + url.PathEscape(org) + "/pipelines/" + url.PathEscape(pipeline) +
		"/builds/" + strconv.Itoa(build) + "/jobs/" + url.PathEscape(jobID)
}

// JobEnv returns a job's environment variables (GET .../jobs/{id}/env, scope
// read_job_env). The values may hold secrets: callers must reduce the map
// to what they need and never store or log it whole.
func (c *Client) JobEnv(ctx context.Context, org, pipeline string, build int, jobID string) (map[string]string, error) {
	var body struct {
		Env map[string]string `json:"env"`
	}
	if _, err := c.evidenceJSON(ctx, jobPath(org, pipeline, build, jobID)+"/env", nil, &body); err != nil {
		return nil, fmt.Errorf("get job env %s/%s#%d/%s: %w", org, pipeline, build, jobID, err)
	}
	if body.Env == nil {
		body.Env = map[string]string{}
	}
	return body.Env, nil
}

// JobArtifacts lists a job's artifacts (GET .../jobs/{id}/artifacts, scope
// read_artifacts), following at most 10 pages.
func (c *Client) JobArtifacts(ctx context.Context, org, pipeline string, build int, jobID string) ([]Artifact, error) {
	var out []Artifact
	for page := 1; page > 0 && page <= maxEvidencePages; {
		var items []Artifact
		next, err := c.evidenceJSON(ctx, jobPath(org, pipeline, build, jobID)+"/artifacts",
			url.Values{"page": {strconv.Itoa(page)}, "per_page": {"100"}}, &items)
		if err != nil {
			return nil, fmt.Errorf("list artifacts of job %s/%s#%d/%s: %w", org, pipeline, build, jobID, err)
		}
		out = append(out, items...)
		page = next
	}
	return out, nil
}

// DownloadArtifact returns the content of a job's artifact (GET
// .../artifacts/{id}/download, scope read_artifacts, which redirects to a
// short-lived signed URL; the token is never sent to that other host). It
// fails with ErrLogTooLarge when the artifact is larger than max bytes
// (DefaultMaxArtifactBytes when max <= 0).
func (c *Client) DownloadArtifact(ctx context.Context, org, pipeline string, build int, a Artifact, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxArtifactBytes
	}
	what := fmt.Sprintf("artifact %s of job %s/%s#%d/%s", a.Path, org, pipeline, build, a.JobID)
	if a.FileSize > max {
		return nil, fmt.Errorf("download %s: %d bytes over the %d-byte cap: %w", what, a.FileSize, max, ErrLogTooLarge)
	}
	ctx, cancel := context.WithTimeout(ctx, c.logTimeout)
	defer cancel()
	u := *c.base
	u.Path = c.base.Path + jobPath(org, pipeline, build, a.JobID) + "/artifacts/" + url.PathEscape(a.ID) + "/download"
	u.RawPath = ""
	resp, err := c.doRaw(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download %s: %w", what, &UnreachableError{Reason: ReasonBadResponse,
			Err: fmt.Errorf("answer %d", resp.StatusCode)})
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", what, c.normalise(ctx, err))
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("download %s: over the %d-byte cap: %w", what, max, ErrLogTooLarge)
	}
	return data, nil
}

// BuildTestEngineRuns returns the Test Engine runs linked to a build (GET
// .../builds/{n}?include_test_engine=true, scope read_builds).
func (c *Client) BuildTestEngineRuns(ctx context.Context, org, pipeline string, number int) ([]TestEngineRun, error) {
	var body struct {
		TestEngine *struct {
			Runs []TestEngineRun `json:"runs"`
		} `json:"test_engine"`
	}
	q := url.Values{"include_test_engine": {"true"}, "exclude_jobs": {"true"}, "exclude_pipeline": {"true"}}
	_, err := c.evidenceJSON(ctx, "/v2/organizations/"+url.PathEscape(org)+"/pipelines/"+url.PathEscape(pipeline)+
		"/builds/"+strconv.Itoa(number), q, &body)
	if err != nil {
		return nil, fmt.Errorf("get Test Engine runs of build %s#%d: %w", pipeline, number, err)
	}
	if body.TestEngine == nil {
		return nil, nil
	}
	return body.TestEngine.Runs, nil
}

func analyticsPath(org, suite string) string {
	return "/v2/analytics/organizations/" + url.PathEscape(org) + "/suites/" + url.PathEscape(suite)
}

// FailedExecutions lists the failed executions of a Test Engine run with
// their expanded failures (GET .../suites/{s}/runs/{r}/failed_executions,
// scope read_suites), following at most 10 pages.
func (c *Client) FailedExecutions(ctx context.Context, org, suite, runID string) ([]FailedExecution, error) {
	var out []FailedExecution
	for page := 1; page > 0 && page <= maxEvidencePages; {
		var items []FailedExecution
		next, err := c.evidenceJSON(ctx, analyticsPath(org, suite)+"/runs/"+url.PathEscape(runID)+"/failed_executions",
			url.Values{"include_failure_expanded": {"true"}, "page": {strconv.Itoa(page)}, "per_page": {"100"}}, &items)
		if err != nil {
			return nil, fmt.Errorf("list failed executions of run %s of suite %s: %w", runID, suite, err)
		}
		out = append(out, items...)
		page = next
	}
	return out, nil
}

// FlakyTests lists the tests of a suite labelled flaky (GET
// .../suites/{s}/tests?label=flaky, scope read_suites), following at most
// 10 pages.
func (c *Client) FlakyTests(ctx context.Context, org, suite string) ([]SuiteTest, error) {
	var out []SuiteTest
	for page := 1; page > 0 && page <= maxEvidencePages; {
		var items []SuiteTest
		next, err := c.evidenceJSON(ctx, analyticsPath(org, suite)+"/tests",
			url.Values{"label": {"flaky"}, "page": {strconv.Itoa(page)}, "per_page": {"100"}}, &items)
		if err != nil {
			return nil, fmt.Errorf("list flaky tests of suite %s: %w", suite, err)
		}
		out = append(out, items...)
		page = next
	}
	return out, nil
}

// evidenceJSON GETs path?q under the call deadline, decodes the answer into
// v and returns the next page number from the Link header (0 when none).
func (c *Client) evidenceJSON(ctx context.Context, path string, q url.Values, v any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := *c.base
	u.Path = c.base.Path + path
	u.RawPath = ""
	u.RawQuery = q.Encode()
	resp, err := c.doRaw(ctx, http.MethodGet, u.String(), http.Header{"Accept": {"application/json"}})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(&limitedReader{r: resp.Body, n: maxJSONBody}).Decode(v); err != nil {
		return 0, c.normalise(ctx, &UnreachableError{Reason: ReasonBadResponse, Err: fmt.Errorf("decode answer: %w", err)})
	}
	return nextPageOf(resp.Header.Get("Link")), nil
}

var nextLinkRE = regexp.MustCompile(`<([^>]*)>\s*;[^,]*rel="next"`)

// nextPageOf returns the page parameter of a Link header's rel="next"
// entry, or 0.
func nextPageOf(link string) int {
	m := nextLinkRE.FindStringSubmatch(link)
	if m == nil {
		return 0
	}
	u, err := url.Parse(m[1])
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(u.Query().Get("page"))
	return n
}
