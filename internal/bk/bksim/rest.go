package bksim

import (
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// UNCONFIRMED: the body Buildkite sends for an unknown route.
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
	})
	s.api("GET /{$}", noAuth, func(c *call) error {
		writeJSON(c.w, 200, map[string]any{"message": "🛠", "timestamp": c.s.now().Unix()})
		return nil
	})
	s.api("GET /v2/meta", noAuth, func(c *call) error {
		writeJSON(c.w, 200, map[string]any{"webhook_ips": []string{"100.24.182.113/32", "35.172.45.249/32", "54.85.125.32/32"}})
		return nil
	})
	s.api("GET /v2/access-token", "", s.getAccessToken)
	s.api("DELETE /v2/access-token", "", func(c *call) error {
		c.tok.revoked = true
		c.w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.api("GET /v2/user", "read_user", func(c *call) error {
		writeJSON(c.w, 200, c.rd().user(c.tok.user))
		return nil
	})
	s.api("GET /v2/organizations", "read_organizations", func(c *call) error {
		var out []orgJSON
		for _, o := range c.s.w.orgs {
			if c.tok.canOrg(o.slug) {
				out = append(out, c.rd().org(o))
			}
		}
		writeJSON(c.w, 200, nonNil(paginate(c, out)))
		return nil
	})
	s.api("GET /v2/organizations/{org}", "read_organizations", func(c *call) error {
		writeJSON(c.w, 200, c.rd().org(c.org))
		return nil
	})
	// The docs name a read_accounts scope here, which the token UI does not
	// offer; the reference calls it a likely doc slip (UNCONFIRMED), so the
	// simulator asks for read_organizations and also accepts read_accounts.
	s.api("GET /v2/organizations/{org}/rate_limit", "read_organizations", s.getRateLimit)
	s.api("GET /v2/organizations/{org}/pipelines", "read_pipelines", s.listPipelines)
	s.api("GET /v2/organizations/{org}/pipelines/{pipeline}", "read_pipelines", func(c *call) error {
		p, err := c.pipeline()
		if err != nil {
			return err
		}
		writeJSON(c.w, 200, c.rd().pipeline(p, c.s.w.builds))
		return nil
	})
	s.api("GET /v2/builds", "read_builds", s.listBuilds)
	s.api("GET /v2/organizations/{org}/builds", "read_builds", s.listBuilds)
	s.api("GET /v2/organizations/{org}/pipelines/{pipeline}/builds", "read_builds", s.listBuilds)
	s.api("GET /v2/organizations/{org}/pipelines/{pipeline}/builds/{number}", "read_builds", s.getBuild)
	s.api("GET /v2/organizations/{org}/pipelines/{pipeline}/builds/{number}/jobs", "read_builds", s.listJobs)
	s.api("GET /v2/organizations/{org}/pipelines/{pipeline}/builds/{number}/jobs/{job}", "read_builds", s.getJob)
	s.api("GET /v2/organizations/{org}/jobs/{job}", "read_builds", s.getJob)
	for _, prefix := range []string{"/v2/organizations/{org}/pipelines/{pipeline}/builds/{number}/jobs/{job}", "/v2/organizations/{org}/jobs/{job}"} {
		// GET patterns also answer HEAD.
		s.api("GET "+prefix+"/log", "read_build_logs", s.getLog)
		s.api("GET "+prefix+"/log.txt", "read_build_logs", s.getLog)
		s.api("GET "+prefix+"/env", "read_job_env", s.getEnv)
		s.api("GET "+prefix+"/env.txt", "read_job_env", s.getEnv)
		s.api("GET "+prefix+"/artifacts", "read_artifacts", s.listJobArtifacts)
		s.api("GET "+prefix+"/artifacts/{artifact}", "read_artifacts", s.getArtifact)
		s.api("GET "+prefix+"/artifacts/{artifact}/download", "read_artifacts", s.downloadArtifact)
	}
	s.api("GET /v2/organizations/{org}/pipelines/{pipeline}/builds/{number}/artifacts", "read_artifacts", s.listBuildArtifacts)
	s.api("GET /v2/organizations/{org}/pipelines/{pipeline}/builds/{number}/annotations", "read_builds", s.listAnnotations)
	s.api("GET /v2/organizations/{org}/teams", "read_teams", s.listTeams)
	s.api("GET /v2/organizations/{org}/teams/{team}", "read_teams", s.getTeam)
	s.testEngineRoutes()
	s.mux.HandleFunc("GET /_sim/artifact-blobs/{artifact}", s.artifactBlob)
	s.controlRoutes()
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

func (s *Server) getAccessToken(c *call) error {
	t := c.tok
	rd := c.rd()
	rd.hook = true // this endpoint uses the "2006-01-02 15:04:05 UTC" form
	type userRef struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	writeJSON(c.w, 200, struct {
		UUID        string   `json:"uuid"`
		Scopes      []string `json:"scopes"`
		Description string   `json:"description"`
		CreatedAt   *string  `json:"created_at"`
		ExpiresAt   *string  `json:"expires_at"`
		User        userRef  `json:"user"`
	}{t.uuid, nonNil(t.scopes), t.description, rd.t(t.created), rd.tp(t.expires), userRef{t.user.name, t.user.email}})
	return nil
}

func (s *Server) getRateLimit(c *call) error {
	w := s.window(s.rlOrg, c.org.slug)
	reset := w.start.Add(rateWindow)
	type details struct {
		Limit    int    `json:"limit"`
		Current  int    `json:"current"`
		Reset    int    `json:"reset"`
		ResetAt  string `json:"reset_at"`
		Enforced bool   `json:"enforced"`
	}
	writeJSON(c.w, 200, map[string]any{"scopes": map[string]details{
		"rest":    {s.orgLimit, w.count, s.secondsUntil(reset), reset.Format(time.RFC3339), true},
		"graphql": {20000, 0, 300, s.now().Add(5 * time.Minute).Format(time.RFC3339), true},
	}})
	return nil
}

func (c *call) pipeline() (*pipeline, error) {
	slug := c.r.PathValue("pipeline")
	for _, p := range c.s.w.pipelines {
		if p.org == c.org && p.slug == slug {
			return p, nil
		}
	}
	return nil, errStatus(http.StatusNotFound, msgNoPipe)
}

func (c *call) build() (*build, error) {
	p, err := c.pipeline()
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(c.r.PathValue("number"))
	if err != nil {
		return nil, errStatus(http.StatusNotFound, msgNoBuild)
	}
	for _, b := range c.s.w.builds {
		if b.pipeline == p && b.number == n {
			return b, nil
		}
	}
	return nil, errStatus(http.StatusNotFound, msgNoBuild)
}

// job finds the {job} of the route, pipeline-scoped or organization-scoped.
func (c *call) job() (*job, error) {
	id := c.r.PathValue("job")
	if c.r.PathValue("pipeline") != "" {
		b, err := c.build()
		if err != nil {
			return nil, err
		}
		for _, j := range b.jobs {
			if j.id == id {
				return j, nil
			}
		}
		return nil, errStatus(http.StatusNotFound, msgNoJob)
	}
	j := c.s.w.jobByID[id]
	if j == nil || j.build.pipeline.org != c.org {
		return nil, errStatus(http.StatusNotFound, msgNoJob)
	}
	return j, nil
}

func (s *Server) listPipelines(c *call) error {
	q := c.r.URL.Query()
	name, repo := strings.ToLower(q.Get("name")), strings.ToLower(q.Get("repository"))
	var out []pipelineJSON
	for _, p := range s.w.pipelines {
		if p.org != c.org {
			continue
		}
		if name != "" && !strings.Contains(strings.ToLower(p.name), name) {
			continue
		}
		if repo != "" && !strings.Contains(strings.ToLower(p.repository), repo) {
			continue
		}
		out = append(out, c.rd().pipeline(p, s.w.builds))
	}
	writeJSON(c.w, 200, nonNil(paginate(c, out)))
	return nil
}

func parseISO(v string) (time.Time, bool) {
	for _, f := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z07:00", "2006-01-02"} {
		if t, err := time.Parse(f, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// branchMatch supports Buildkite's "*" wildcards in branch filters.
func branchMatch(pattern, branch string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == branch
	}
	ok, err := path.Match(strings.ReplaceAll(pattern, "/", "\x00"), strings.ReplaceAll(branch, "/", "\x00"))
	return err == nil && ok
}

func (s *Server) listBuilds(c *call) error {
	q := c.r.URL.Query()
	var pl *pipeline
	if c.r.PathValue("pipeline") != "" {
		p, err := c.pipeline()
		if err != nil {
			return err
		}
		pl = p
	}
	states := multi(q, "state")
	if slices.Contains(states, "finished") {
		states = append(states, "passed", "failed", "blocked", "canceled")
	}
	for _, st := range states {
		if st != "finished" && !slices.Contains(buildStates, st) {
			// UNCONFIRMED: the exact validation body for a bad state filter.
			return &apiError{status: http.StatusUnprocessableEntity, msg: "Validation Failed", extra: map[string]any{"errors": []map[string]string{{"field": "state", "code": "invalid"}}}}
		}
	}
	branches, commits := multi(q, "branch"), multi(q, "commit")
	var from, to, finFrom time.Time
	for name, dst := range map[string]*time.Time{"created_from": &from, "created_to": &to, "finished_from": &finFrom} {
		if v := q.Get(name); v != "" {
			t, ok := parseISO(v)
			if !ok {
				return &apiError{status: http.StatusUnprocessableEntity, msg: "Validation Failed", extra: map[string]any{"errors": []map[string]string{{"field": name, "code": "invalid"}}}}
			}
			*dst = t
		}
	}
	creator := q.Get("creator")
	meta := map[string]string{}
	for k, v := range q {
		if inner, ok := strings.CutPrefix(k, "meta_data["); ok && strings.HasSuffix(inner, "]") && len(v) > 0 {
			meta[strings.TrimSuffix(inner, "]")] = v[0]
		}
	}
	var matched []*build
	for _, b := range s.w.builds {
		switch {
		case pl != nil && b.pipeline != pl,
			c.org != nil && b.pipeline.org != c.org,
			c.org == nil && !c.tok.canOrg(b.pipeline.org.slug),
			len(states) > 0 && !slices.Contains(states, b.state) && !(b.blocked && slices.Contains(states, "blocked")),
			len(branches) > 0 && !slices.ContainsFunc(branches, func(p string) bool { return branchMatch(p, b.branch) }),
			len(commits) > 0 && !slices.Contains(commits, b.commit),
			!from.IsZero() && b.created.Before(from),
			!to.IsZero() && !b.created.Before(to),
			!finFrom.IsZero() && (b.finished == nil || b.finished.Before(finFrom)),
			creator != "" && (b.creator == nil || b.creator.id != creator):
			continue
		}
		ok := true
		for k, v := range meta {
			if b.meta[k] != v {
				ok = false
			}
		}
		if ok {
			matched = append(matched, b)
		}
	}
	// Newest first by creation; the build number breaks ties.
	slices.SortStableFunc(matched, func(a, b *build) int {
		if c := b.created.Compare(a.created); c != 0 {
			return c
		}
		return b.number - a.number
	})
	// UNCONFIRMED: the page depth that triggers this error; 500 pages here.
	if pg, _ := page(c.r); pg > 500 {
		return errStatus(http.StatusBadRequest, msgTooDeep)
	}
	o := buildOpts{excludeJobs: boolParam(q, "exclude_jobs"), excludePipeline: boolParam(q, "exclude_pipeline"), includeRetried: boolParam(q, "include_retried_jobs"), all: s.w.builds}
	out := []buildJSON{}
	for _, b := range paginate(c, matched) {
		out = append(out, c.rd().build(b, o))
	}
	writeJSON(c.w, 200, out)
	return nil
}

func (s *Server) getBuild(c *call) error {
	b, err := c.build()
	if err != nil {
		return err
	}
	q := c.r.URL.Query()
	o := buildOpts{
		excludeJobs: boolParam(q, "exclude_jobs"), excludePipeline: boolParam(q, "exclude_pipeline"), includeRetried: boolParam(q, "include_retried_jobs"),
		testEngine: boolParam(q, "include_test_engine"), counts: true, jobStates: multi(q, "job_states"), all: s.w.builds,
	}
	writeJSON(c.w, 200, c.rd().build(b, o))
	return nil
}

// listJobs is the cursor-paginated list (reference §4.5): {items, links}.
func (s *Server) listJobs(c *call) error {
	b, err := c.build()
	if err != nil {
		return err
	}
	q := c.r.URL.Query()
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per < 1 {
		per = 30
	}
	per = min(per, 100)
	jobs := visibleJobs(b, boolParam(q, "include_retried_jobs"))
	start, end := 0, len(jobs)
	if after := q.Get("after"); after != "" {
		i := slices.IndexFunc(jobs, func(j *job) bool { return j.id == after })
		if i < 0 {
			return errStatus(http.StatusNotFound, msgNoJob)
		}
		start = i + 1
	} else if before := q.Get("before"); before != "" {
		i := slices.IndexFunc(jobs, func(j *job) bool { return j.id == before })
		if i < 0 {
			return errStatus(http.StatusNotFound, msgNoJob)
		}
		end = i
		start = max(0, end-per)
	}
	page := jobs[start:min(end, start+per)]
	items := []any{}
	for _, j := range page {
		items = append(items, c.rd().job(j))
	}
	self := c.s.baseURL(c.r) + c.r.URL.RequestURI()
	links := map[string]*string{"self": &self, "next": nil, "prev": nil}
	mk := func(k, v string) *string {
		q2 := c.r.URL.Query()
		q2.Del("after")
		q2.Del("before")
		q2.Set(k, v)
		q2.Set("per_page", strconv.Itoa(per))
		u := c.s.baseURL(c.r) + c.r.URL.Path + "?" + encodeQuery(q2)
		return &u
	}
	if len(page) > 0 && start+len(page) < len(jobs) {
		links["next"] = mk("after", page[len(page)-1].id)
	}
	if len(page) > 0 && start > 0 {
		links["prev"] = mk("before", page[0].id)
	}
	writeJSON(c.w, 200, map[string]any{"items": items, "links": links})
	return nil
}

func (s *Server) getJob(c *call) error {
	j, err := c.job()
	if err != nil {
		return err
	}
	writeJSON(c.w, 200, c.rd().job(j))
	return nil
}

func (s *Server) getEnv(c *call) error {
	j, err := c.job()
	if err != nil {
		return err
	}
	env := jobEnv(c, j)
	if strings.HasSuffix(c.r.URL.Path, ".txt") || strings.Contains(c.r.Header.Get("Accept"), "text/plain") {
		keys := slices.Sorted(mapsKeys(env))
		c.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, k := range keys {
			_, _ = c.w.Write([]byte(k + "=" + env[k] + "\n"))
		}
		return nil
	}
	writeJSON(c.w, 200, map[string]any{"env": env})
	return nil
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// jobEnv is the job's BUILDKITE_* environment plus its declared env.
func jobEnv(c *call, j *job) map[string]string {
	b := j.build
	p := b.pipeline
	pr := "false"
	if b.pr != nil {
		pr = b.pr.ID
	}
	env := map[string]string{
		"CI": "true", "BUILDKITE": "true", "BUILDKITE_TAG": b.tag, "BUILDKITE_REPO": p.repository, "BUILDKITE_BRANCH": b.branch,
		"BUILDKITE_COMMIT": b.commit, "BUILDKITE_JOB_ID": j.id, "BUILDKITE_COMMAND": j.command, "BUILDKITE_MESSAGE": b.message,
		"BUILDKITE_BUILD_ID": b.id, "BUILDKITE_BUILD_URL": c.rd().build(b, buildOpts{excludeJobs: true, excludePipeline: true}).WebURL,
		"BUILDKITE_BUILD_NUMBER": strconv.Itoa(b.number), "BUILDKITE_ORGANIZATION_SLUG": p.org.slug, "BUILDKITE_PIPELINE_SLUG": p.slug,
		"BUILDKITE_PULL_REQUEST": pr, "BUILDKITE_PIPELINE_PROVIDER": p.provider.ID, "BUILDKITE_REPO_SSH_HOST": "github.com",
		"BUILDKITE_AGENT_META_DATA_QUEUE": "default",
	}
	if b.creator != nil {
		env["BUILDKITE_BUILD_CREATOR"] = b.creator.name
		env["BUILDKITE_BUILD_CREATOR_EMAIL"] = b.creator.email
	}
	if b.pr != nil {
		env["BUILDKITE_PULL_REQUEST_BASE_BRANCH"] = b.pr.Base
	}
	var paths []string
	for _, a := range j.artifacts {
		paths = append(paths, a.path)
	}
	env["BUILDKITE_ARTIFACT_PATHS"] = strings.Join(paths, ";")
	for k, v := range p.env {
		env[k] = v
	}
	for k, v := range b.env {
		env[k] = v
	}
	for k, v := range j.env {
		env[k] = v
	}
	return env
}

func (s *Server) listBuildArtifacts(c *call) error {
	b, err := c.build()
	if err != nil {
		return err
	}
	var arts []*artifact
	for _, j := range b.jobs {
		arts = append(arts, j.artifacts...)
	}
	return c.writeArtifacts(arts)
}

func (s *Server) listJobArtifacts(c *call) error {
	j, err := c.job()
	if err != nil {
		return err
	}
	return c.writeArtifacts(j.artifacts)
}

func (c *call) writeArtifacts(arts []*artifact) error {
	q := c.r.URL.Query()
	state, glob := q.Get("state"), q.Get("path")
	if state != "" && !slices.Contains(artifactStates, state) {
		return &apiError{status: http.StatusUnprocessableEntity, msg: "Validation Failed", extra: map[string]any{"errors": []map[string]string{{"field": "state", "code": "invalid"}}}}
	}
	var out []artifactJSON
	for _, a := range arts {
		if state != "" && a.state != state {
			continue
		}
		if glob != "" {
			if ok, _ := path.Match(glob, a.path); !ok && glob != a.path {
				continue
			}
		}
		out = append(out, c.rd().artifact(a))
	}
	writeJSON(c.w, 200, nonNil(paginate(c, out)))
	return nil
}

func (c *call) artifact() (*artifact, error) {
	j, err := c.job()
	if err != nil {
		return nil, err
	}
	for _, a := range j.artifacts {
		if a.id == c.r.PathValue("artifact") {
			return a, nil
		}
	}
	// UNCONFIRMED: the message for an unknown artifact.
	return nil, errStatus(http.StatusNotFound, "No artifact found")
}

func (s *Server) getArtifact(c *call) error {
	a, err := c.artifact()
	if err != nil {
		return err
	}
	writeJSON(c.w, 200, c.rd().artifact(a))
	return nil
}

// downloadArtifact answers 302 with the target in Location and in the body,
// as Buildkite does with its signed S3 URLs. The target is the simulator's
// own blob route, which needs no token (like S3 with a presigned URL).
func (s *Server) downloadArtifact(c *call) error {
	a, err := c.artifact()
	if err != nil {
		return err
	}
	exp := s.now().Add(60 * time.Second).Unix()
	target := s.baseURL(c.r) + "/_sim/artifact-blobs/" + a.id + "?X-Amz-Expires=60&X-Amz-Date=" + strconv.FormatInt(exp, 10) + "&X-Amz-Signature=" + a.sha1[:16]
	c.w.Header().Set("Location", target)
	writeJSON(c.w, http.StatusFound, map[string]string{"url": target})
	return nil
}

func (s *Server) artifactBlob(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	a := s.w.artByID[r.PathValue("artifact")]
	s.mu.Unlock()
	if a == nil {
		http.Error(w, "NoSuchKey", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", a.mime)
	w.Header().Set("Content-Length", strconv.FormatInt(a.size, 10))
	_, _ = w.Write(a.content)
}

func (s *Server) listAnnotations(c *call) error {
	b, err := c.build()
	if err != nil {
		return err
	}
	scope := c.r.URL.Query().Get("scope")
	var out []annotationJSON
	for _, a := range b.annotations {
		// UNCONFIRMED: with no scope parameter, every annotation is listed.
		if scope != "" && scope != "all" && a.scope != scope {
			continue
		}
		out = append(out, c.rd().annotation(a))
	}
	writeJSON(c.w, 200, nonNil(paginate(c, out)))
	return nil
}

func (s *Server) listTeams(c *call) error {
	uid := c.r.URL.Query().Get("user_id")
	var out []teamJSON
	for _, t := range s.w.teams {
		if t.org != c.org {
			continue
		}
		if uid != "" && !slices.ContainsFunc(t.members, func(u *user) bool { return u.id == uid }) {
			continue
		}
		out = append(out, c.rd().team(t))
	}
	writeJSON(c.w, 200, nonNil(paginate(c, out)))
	return nil
}

func (s *Server) getTeam(c *call) error {
	for _, t := range s.w.teams {
		if t.org == c.org && t.id == c.r.PathValue("team") {
			writeJSON(c.w, 200, c.rd().team(t))
			return nil
		}
	}
	// UNCONFIRMED: the message for an unknown team.
	return errStatus(http.StatusNotFound, "No team found")
}
