package bksim

import (
	"net/http"
	"slices"
	"strings"
)

// Test Engine routes live under /v2/analytics/organizations/{org} and all need
// read_suites (reference §9).
func (s *Server) testEngineRoutes() {
	base := "GET /v2/analytics/organizations/{org}"
	s.api(base+"/suites", "read_suites", func(c *call) error {
		var out []suiteJSON
		for _, su := range c.s.w.suites {
			if su.org == c.org {
				out = append(out, c.rd().suite(su))
			}
		}
		writeJSON(c.w, 200, nonNil(paginate(c, out)))
		return nil
	})
	s.api(base+"/suites/{suite}", "read_suites", func(c *call) error {
		su, err := c.suite()
		if err != nil {
			return err
		}
		writeJSON(c.w, 200, c.rd().suite(su))
		return nil
	})
	s.api(base+"/suites/{suite}/runs", "read_suites", func(c *call) error {
		su, err := c.suite()
		if err != nil {
			return err
		}
		bid := c.r.URL.Query().Get("build_id")
		var out []runJSON
		for _, r := range slices.Backward(su.runs) {
			if bid == "" || r.build.id == bid {
				out = append(out, c.rd().run(r))
			}
		}
		writeJSON(c.w, 200, nonNil(paginate(c, out)))
		return nil
	})
	s.api(base+"/suites/{suite}/runs/{run}", "read_suites", func(c *call) error {
		r, err := c.run()
		if err != nil {
			return err
		}
		writeJSON(c.w, 200, c.rd().run(r))
		return nil
	})
	s.api(base+"/suites/{suite}/runs/{run}/failed_executions", "read_suites", func(c *call) error {
		r, err := c.run()
		if err != nil {
			return err
		}
		expanded := boolParam(c.r.URL.Query(), "include_failure_expanded")
		var out []failedExecJSON
		for _, e := range r.failures {
			out = append(out, c.rd().failedExec(r, e, expanded))
		}
		writeJSON(c.w, 200, nonNil(paginate(c, out)))
		return nil
	})
	s.api(base+"/suites/{suite}/tests", "read_suites", func(c *call) error {
		su, err := c.suite()
		if err != nil {
			return err
		}
		q := c.r.URL.Query()
		labels := multi(q, "label")
		labels = append(labels, splitComma(q.Get("labels"))...)
		var out []any
		for _, t := range su.tests {
			if len(labels) > 0 && !slices.ContainsFunc(labels, func(l string) bool { return slices.Contains(t.labels, l) }) {
				continue
			}
			out = append(out, c.rd().test(t, versioned(c.r)))
		}
		writeJSON(c.w, 200, nonNil(paginate(c, out)))
		return nil
	})
	s.api(base+"/suites/{suite}/tests/{test}", "read_suites", func(c *call) error {
		su, err := c.suite()
		if err != nil {
			return err
		}
		for _, t := range su.tests {
			if t.id == c.r.PathValue("test") {
				writeJSON(c.w, 200, c.rd().test(t, versioned(c.r)))
				return nil
			}
		}
		return errStatus(http.StatusNotFound, "No test found") // UNCONFIRMED message
	})
	// Legacy, deprecated endpoint that go-buildkite v4 still calls.
	s.api(base+"/suites/{suite}/flaky-tests", "read_suites", func(c *call) error {
		su, err := c.suite()
		if err != nil {
			return err
		}
		var out []flakyJSON
		for _, t := range su.tests {
			if slices.Contains(t.labels, "flaky") {
				out = append(out, c.rd().flaky(t))
			}
		}
		writeJSON(c.w, 200, nonNil(paginate(c, out)))
		return nil
	})
	s.api(base+"/builds/{build}/tests", "read_suites", func(c *call) error {
		b := c.s.w.buildByID[c.r.PathValue("build")]
		if b == nil || b.pipeline.org != c.org {
			return errStatus(http.StatusNotFound, msgNoBuild)
		}
		q := c.r.URL.Query()
		result := q.Get("result")
		include := splitComma(q.Get("include"))
		var out []any
		for _, r := range b.runs {
			for _, t := range r.suite.tests {
				failedHere := slices.ContainsFunc(r.failures, func(e *execution) bool { return e.test == t })
				switch result {
				case "failed", "^failed":
					if !failedHere {
						continue
					}
				case "passed", "^passed":
					if failedHere {
						continue
					}
				}
				if versioned(c.r) {
					out = append(out, c.rd().test(t, true))
				} else {
					out = append(out, c.rd().buildTest(r, t, include))
				}
			}
		}
		writeJSON(c.w, 200, nonNil(paginate(c, out)))
		return nil
	})
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// versioned reports whether the caller asked for the 2026-08 response shape
// with a Buildkite-Version header. Without it the build-tests endpoint
// answers in the older shape go-buildkite v4 models (the sources conflict,
// reference §9).
func versioned(r *http.Request) bool {
	v := r.Header.Get("Buildkite-Version")
	return v != "" && v >= "2026-08-01"
}

func (c *call) suite() (*suite, error) {
	for _, su := range c.s.w.suites {
		if su.org == c.org && su.slug == c.r.PathValue("suite") {
			return su, nil
		}
	}
	return nil, errStatus(http.StatusNotFound, "No suite found") // UNCONFIRMED message
}

func (c *call) run() (*run, error) {
	su, err := c.suite()
	if err != nil {
		return nil, err
	}
	r := c.s.w.runByID[c.r.PathValue("run")]
	if r == nil || r.suite != su {
		return nil, errStatus(http.StatusNotFound, "No run found") // UNCONFIRMED message
	}
	return r, nil
}

type suiteJSON struct {
	ID              string  `json:"id"`
	GraphQLID       string  `json:"graphql_id"`
	Slug            string  `json:"slug"`
	Name            string  `json:"name"`
	URL             string  `json:"url"`
	WebURL          string  `json:"web_url"`
	DefaultBranch   string  `json:"default_branch"`
	ApplicationName *string `json:"application_name"`
	Color           string  `json:"color"`
	Emoji           *string `json:"emoji"`
	OIDCPolicy      *string `json:"oidc_policy"`
}

func (rd renderer) suite(su *suite) suiteJSON {
	return suiteJSON{
		ID: su.id, GraphQLID: graphqlID("Suite", su.id), Slug: su.slug, Name: su.name,
		URL:    rd.api("/v2/analytics/organizations/%s/suites/%s", su.org.slug, su.slug),
		WebURL: rd.web + "/organizations/" + su.org.slug + "/analytics/suites/" + su.slug, DefaultBranch: su.defaultBranch,
		ApplicationName: strp(su.appName), Color: "#14CC80",
	}
}

type runJSON struct {
	ID        string  `json:"id"`
	URL       string  `json:"url"`
	WebURL    string  `json:"web_url"`
	Branch    string  `json:"branch"`
	CommitSHA string  `json:"commit_sha"`
	State     string  `json:"state"`
	Result    string  `json:"result"`
	BuildID   string  `json:"build_id"`
	CreatedAt *string `json:"created_at"`
}

func (rd renderer) runURL(r *run) (string, string) {
	su := r.suite
	return rd.api("/v2/analytics/organizations/%s/suites/%s/runs/%s", su.org.slug, su.slug, r.id),
		rd.web + "/organizations/" + su.org.slug + "/analytics/suites/" + su.slug + "/runs/" + r.id
}

func (rd renderer) run(r *run) runJSON {
	u, w := rd.runURL(r)
	return runJSON{r.id, u, w, r.build.branch, r.build.commit, r.state, r.result, r.build.id, rd.t(r.created)}
}

type failureExpandedJSON struct {
	Backtrace []string `json:"backtrace"`
	Expanded  []string `json:"expanded"`
}

type failedExecJSON struct {
	ExecutionID      string                `json:"execution_id"`
	RunID            string                `json:"run_id"`
	TestID           string                `json:"test_id"`
	RunName          string                `json:"run_name"`
	CommitSHA        string                `json:"commit_sha"`
	CreatedAt        *string               `json:"created_at"`
	Branch           string                `json:"branch"`
	FailureReason    string                `json:"failure_reason"`
	Duration         float64               `json:"duration"`
	Location         string                `json:"location"`
	TestName         string                `json:"test_name"`
	RunURL           string                `json:"run_url"`
	TestURL          string                `json:"test_url"`
	TestExecutionURL string                `json:"test_execution_url"`
	Tags             map[string]string     `json:"tags"`
	FailureExpanded  []failureExpandedJSON `json:"failure_expanded,omitempty"`
}

func (rd renderer) failedExec(r *run, e *execution, expanded bool) failedExecJSON {
	runURL, runWeb := rd.runURL(r)
	t := rd.test(e.test, false).(testJSON)
	out := failedExecJSON{
		ExecutionID: e.id, RunID: r.id, TestID: e.test.id, RunName: r.build.message, CommitSHA: r.build.commit, CreatedAt: rd.t(r.created),
		Branch: r.build.branch, FailureReason: e.reason, Duration: e.duration, Location: e.test.location, TestName: e.test.scope + " " + e.test.name,
		RunURL: runURL, TestURL: t.URL, TestExecutionURL: runWeb + "/executions/" + e.id, Tags: map[string]string{},
	}
	if expanded {
		out.FailureExpanded = []failureExpandedJSON{{Backtrace: nonNil(e.trace), Expanded: []string{e.reason}}}
	}
	return out
}

type testJSON struct {
	ID       string   `json:"id"`
	URL      string   `json:"url"`
	WebURL   string   `json:"web_url"`
	Scope    string   `json:"scope"`
	Name     string   `json:"name"`
	Location string   `json:"location"`
	FileName string   `json:"file_name"`
	Labels   []string `json:"labels"`
}

type testMetricsJSON struct {
	testJSON
	Reliability             *float64       `json:"reliability"`
	DurationAvg             float64        `json:"duration_avg"`
	DurationSum             float64        `json:"duration_sum"`
	DurationMin             float64        `json:"duration_min"`
	DurationMax             float64        `json:"duration_max"`
	ExecutionsCount         int            `json:"executions_count"`
	ExecutionsCountByResult map[string]int `json:"executions_count_by_result"`
}

func fileOf(loc string) string {
	if i := strings.LastIndexByte(loc, ':'); i > 0 {
		return loc[:i]
	}
	return loc
}

func (rd renderer) test(t *testCase, metrics bool) any {
	su := t.suite
	base := testJSON{
		ID: t.id, URL: rd.api("/v2/analytics/organizations/%s/suites/%s/tests/%s", su.org.slug, su.slug, t.id),
		WebURL: rd.web + "/organizations/" + su.org.slug + "/analytics/suites/" + su.slug + "/tests/" + t.id,
		Scope:  t.scope, Name: t.name, Location: t.location, FileName: fileOf(t.location), Labels: nonNil(t.labels),
	}
	if !metrics {
		return base
	}
	total := t.passed + t.failed
	out := testMetricsJSON{testJSON: base, ExecutionsCount: total, ExecutionsCountByResult: map[string]int{"passed": t.passed, "failed": t.failed},
		DurationAvg: 0.42, DurationSum: 0.42 * float64(total), DurationMin: 0.1, DurationMax: 1.9}
	if total > 0 {
		r := float64(t.passed) / float64(total)
		out.Reliability = &r
	}
	return out
}

type labelJSON struct {
	Name  string `json:"name"`
	Color string `json:"color"`
}

type buildTestJSON struct {
	ID                      string         `json:"id"`
	Scope                   string         `json:"scope"`
	Name                    string         `json:"name"`
	Location                string         `json:"location"`
	State                   string         `json:"state"`
	Labels                  []labelJSON    `json:"labels"`
	ExecutionsCount         int            `json:"executions_count"`
	ExecutionsCountByResult map[string]int `json:"executions_count_by_result"`
	Reliability             float64        `json:"reliability"`
	LatestFail              map[string]any `json:"latest_fail,omitempty"`
	Executions              []any          `json:"executions,omitempty"`
}

// buildTest renders the older build-tests shape that go-buildkite v4 models.
func (rd renderer) buildTest(r *run, t *testCase, include []string) buildTestJSON {
	out := buildTestJSON{ID: t.id, Scope: t.scope, Name: t.name, Location: t.location, State: "enabled", Labels: []labelJSON{},
		ExecutionsCount: 1, ExecutionsCountByResult: map[string]int{"passed": 1, "failed": 0}, Reliability: 1}
	for _, l := range t.labels {
		out.Labels = append(out.Labels, labelJSON{Name: l, Color: "#E5A000"})
	}
	for _, e := range r.failures {
		if e.test != t {
			continue
		}
		out.ExecutionsCountByResult = map[string]int{"passed": 0, "failed": 1}
		out.Reliability = 0
		if slices.Contains(include, "latest_fail") {
			out.LatestFail = map[string]any{"id": e.id, "timestamp": rd.t(r.created), "duration": e.duration, "failure_reason": e.reason,
				"failure_expanded": []failureExpandedJSON{{Backtrace: nonNil(e.trace), Expanded: []string{e.reason}}}}
		}
		if slices.Contains(include, "executions") {
			out.Executions = []any{map[string]any{"id": e.id, "status": "failed", "timestamp": rd.t(r.created), "duration": e.duration, "location": t.location, "failure_reason": e.reason}}
		}
	}
	return out
}

type flakyJSON struct {
	ID                   string   `json:"id"`
	WebURL               string   `json:"web_url"`
	Scope                string   `json:"scope"`
	Name                 string   `json:"name"`
	Location             string   `json:"location"`
	FileName             string   `json:"file_name"`
	Instances            int      `json:"instances"`
	LatestOccurrenceAt   *string  `json:"latest_occurrence_at"`
	MostRecentInstanceAt *string  `json:"most_recent_instance_at"`
	LastResolvedAt       *string  `json:"last_resolved_at"`
	OwnershipTeamIDs     []string `json:"ownership_team_ids"`
}

func (rd renderer) flaky(t *testCase) flakyJSON {
	base := rd.test(t, false).(testJSON)
	var latest *string
	for _, r := range t.suite.runs {
		if slices.ContainsFunc(r.failures, func(e *execution) bool { return e.test == t }) {
			latest = rd.t(r.created)
		}
	}
	return flakyJSON{ID: t.id, WebURL: base.WebURL, Scope: t.scope, Name: t.name, Location: t.location, FileName: base.FileName,
		Instances: t.failed, LatestOccurrenceAt: latest, MostRecentInstanceAt: latest, OwnershipTeamIDs: []string{}}
}
