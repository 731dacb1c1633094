package bksim

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk/bksim/loggen"
)

// ErrNotFound is returned by control methods given an unknown token, build,
// webhook or fault.
var ErrNotFound = errors.New("not found")

// Fault kinds.
const (
	FaultLatency   = "latency"    // delay, then answer normally
	FaultStatus    = "status"     // answer Status (default 503) with a JSON message
	FaultReset     = "reset"      // reset the TCP connection
	FaultHang      = "hang"       // never answer until the client gives up
	FaultRateLimit = "rate_limit" // answer 429 like an exhausted org limit
)

// Fault makes matching API requests misbehave. Org matches requests whose
// path names that organization; Path matches a path prefix; Method a method.
// Empty matchers match everything. Times limits how many requests it hits
// (0: until removed).
type Fault struct {
	ID      int      `json:"id"`
	Org     string   `json:"org,omitempty"`
	Path    string   `json:"path,omitempty"`
	Method  string   `json:"method,omitempty"`
	Kind    string   `json:"kind"`
	Latency Duration `json:"latency,omitzero"`
	Status  int      `json:"status,omitempty"`
	Times   int      `json:"times,omitempty"`
	Hits    int      `json:"hits"`
}

func (f *Fault) validate() error {
	if !slices.Contains([]string{FaultLatency, FaultStatus, FaultReset, FaultHang, FaultRateLimit}, f.Kind) {
		return fmt.Errorf("unknown fault kind %q (want latency, status, reset, hang or rate_limit)", f.Kind)
	}
	if f.Kind == FaultStatus && f.Status == 0 {
		f.Status = http.StatusServiceUnavailable
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		return fmt.Errorf("fault status %d is not an HTTP status", f.Status)
	}
	if f.Times < 0 || f.Latency < 0 {
		return errors.New("fault times and latency must not be negative")
	}
	if f.Path != "" && !strings.HasPrefix(f.Path, "/") {
		return fmt.Errorf("fault path %q must start with /", f.Path)
	}
	return nil
}

func (f *Fault) matches(r *http.Request) bool {
	if f.Method != "" && !strings.EqualFold(f.Method, r.Method) {
		return false
	}
	if f.Path != "" && !strings.HasPrefix(r.URL.Path, f.Path) {
		return false
	}
	if f.Org != "" {
		p := r.URL.Path + "/"
		if !strings.Contains(p, "/organizations/"+f.Org+"/") {
			return false
		}
	}
	return f.Times == 0 || f.Hits < f.Times
}

// matchFault returns the first matching fault and counts the hit. Caller
// holds s.mu.
func (s *Server) matchFault(r *http.Request) *Fault {
	for _, f := range s.faults {
		if f.matches(r) {
			f.Hits++
			cp := *f
			return &cp
		}
	}
	return nil
}

// applyFault acts out f; it reports whether the request should then be
// served normally.
func (s *Server) applyFault(f *Fault, w *recWriter, r *http.Request) bool {
	switch f.Kind {
	case FaultLatency:
		select {
		case <-time.After(time.Duration(f.Latency)):
		case <-r.Context().Done():
		case <-s.closed:
		}
		return true
	case FaultStatus:
		writeJSON(w, f.Status, map[string]string{"message": http.StatusText(f.Status)})
	case FaultRateLimit:
		h := w.Header()
		s.mu.Lock()
		s.setRateHeaders(h, s.orgLimit, s.orgLimit+1, s.userLimit, 0, s.now().Add(rateWindow), s.now().Add(rateWindow))
		s.mu.Unlock()
		writeError(w, &apiError{status: http.StatusTooManyRequests, msg: "You have exceeded your API rate limit. Please wait 60 seconds before making more requests.",
			extra: map[string]any{"scope": "rest", "limit": s.orgLimit, "current": s.orgLimit + 1, "reset": 60}})
	case FaultHang:
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		w.status = 0 // the client saw nothing
	case FaultReset:
		hj, ok := w.ResponseWriter.(http.Hijacker)
		if !ok {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"message": "connection reset not supported here"})
			return false
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // RST instead of FIN
			}
			_ = conn.Close()
		}
		w.status = 0
	}
	return false
}

// AddFault installs a fault and returns its id.
func (s *Server) AddFault(f Fault) (int, error) {
	if err := f.validate(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextFault++
	f.ID, f.Hits = s.nextFault, 0
	s.faults = append(s.faults, &f)
	return f.ID, nil
}

// RemoveFault removes one fault.
func (s *Server) RemoveFault(id int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.faults, func(f *Fault) bool { return f.ID == id })
	if i < 0 {
		return fmt.Errorf("fault %d: %w", id, ErrNotFound)
	}
	s.faults = slices.Delete(s.faults, i, i+1)
	return nil
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Faults lists the installed faults with their hit counts.
func (s *Server) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Fault{}
	for _, f := range s.faults {
		out = append(out, *f)
	}
	return out
}

// Requests returns the API request log (control API calls excluded).
func (s *Server) Requests() []RequestRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqlog)
}

// ResetRequests empties the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqlog = nil
}

func (s *Server) tokenNamed(name string) (*token, error) {
	t := s.w.tokByName[name]
	if t == nil {
		return nil, fmt.Errorf("token %q: %w", name, ErrNotFound)
	}
	return t, nil
}

func (s *Server) withToken(name string, f func(*token) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.tokenNamed(name)
	if err != nil {
		return err
	}
	return f(t)
}

// RevokeToken revokes the named token, as DELETE /v2/access-token would.
func (s *Server) RevokeToken(name string) error {
	return s.withToken(name, func(t *token) error { t.revoked = true; return nil })
}

// ExpireToken makes the named token expire now.
func (s *Server) ExpireToken(name string) error {
	return s.withToken(name, func(t *token) error { e := s.now(); t.expires = &e; return nil })
}

// SetTokenScopes replaces the named token's scopes.
func (s *Server) SetTokenScopes(name string, scopes []string) error {
	for _, sc := range scopes {
		if !slices.Contains(knownScopes, sc) && sc != "read_accounts" {
			return fmt.Errorf("unknown scope %q", sc)
		}
	}
	return s.withToken(name, func(t *token) error { t.scopes = slices.Clone(scopes); return nil })
}

// GrantOrg lets the named token use an organization.
func (s *Server) GrantOrg(name, orgSlug string) error {
	return s.withToken(name, func(t *token) error {
		if s.w.orgBySlug[orgSlug] == nil {
			return fmt.Errorf("organization %q: %w", orgSlug, ErrNotFound)
		}
		if !t.canOrg(orgSlug) {
			t.orgs = append(t.orgs, orgSlug)
		}
		return nil
	})
}

// RevokeOrg removes an organization from the named token.
func (s *Server) RevokeOrg(name, orgSlug string) error {
	return s.withToken(name, func(t *token) error {
		t.orgs = slices.DeleteFunc(t.orgs, func(o string) bool { return o == orgSlug })
		return nil
	})
}

// SetPipelineProvider changes a pipeline's source provider settings, as
// editing them in Buildkite's pipeline settings would: each key in settings
// (for GitHub: publish_commit_status, build_pull_requests, ...) replaces the
// current value, and a nil value removes the key so the provider's default
// shows again. The pipeline is named by organization and pipeline slug.
func (s *Server) SetPipelineProvider(orgSlug, slug string, settings map[string]any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.w.pipelines {
		if p.org.slug != orgSlug || p.slug != slug {
			continue
		}
		// Copy first: the map may be shared with the scenario.
		merged := maps.Clone(p.provider.Settings)
		if merged == nil {
			merged = map[string]any{}
		}
		for k, v := range settings {
			if v == nil {
				delete(merged, k)
			} else {
				merged[k] = v
			}
		}
		p.provider.Settings = merged
		return nil
	}
	return fmt.Errorf("pipeline %s/%s: %w", orgSlug, slug, ErrNotFound)
}

// AddWebhook configures a webhook endpoint at runtime and returns its id.
func (s *Server) AddWebhook(c WebhookConfig) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hooks.add(c)
}

// UpdateWebhook replaces the configuration of webhook c.ID (switches included).
func (s *Server) UpdateWebhook(c WebhookConfig) error {
	v, err := c.validate()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hooks.find(c.ID)
	if h == nil {
		return fmt.Errorf("webhook %d: %w", c.ID, ErrNotFound)
	}
	*h = *v
	return nil
}

// RemoveWebhook deletes a webhook endpoint.
func (s *Server) RemoveWebhook(id int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.hooks.hooks, func(c *WebhookConfig) bool { return c.ID == id })
	if i < 0 {
		return fmt.Errorf("webhook %d: %w", id, ErrNotFound)
	}
	s.hooks.hooks = slices.Delete(s.hooks.hooks, i, i+1)
	return nil
}

// Webhooks lists the configured endpoints. Tokens are included: this is the
// test harness's own configuration.
func (s *Server) Webhooks() []WebhookConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []WebhookConfig{}
	for _, c := range s.hooks.hooks {
		out = append(out, *c)
	}
	return out
}

// PingWebhook queues a ping event to one endpoint.
func (s *Server) PingWebhook(id int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.hooks.find(id)
	if c == nil {
		return fmt.Errorf("webhook %d: %w", id, ErrNotFound)
	}
	s.emitPing(c)
	return nil
}

// Deliveries returns every delivery attempt so far.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hooks.log)
}

// WaitWebhooks blocks until every queued delivery (retries included) is done
// or ctx ends.
func (s *Server) WaitWebhooks(ctx context.Context) error {
	for {
		s.mu.Lock()
		idle := s.hooks.idle()
		s.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for webhook deliveries: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// StartSpec describes a build to start at runtime.
type StartSpec struct {
	// Pipeline is "org/slug".
	Pipeline    string           `json:"pipeline"`
	Branch      string           `json:"branch,omitempty"`
	Commit      string           `json:"commit,omitempty"`
	Message     string           `json:"message,omitempty"`
	PullRequest *PullRequestSpec `json:"pull_request,omitempty"`
	// Outcome is passed (default) or failed; a failed build fails its last
	// script job.
	Outcome string `json:"outcome,omitempty"`
	// Jobs default to one Go test job.
	Jobs []StartJob `json:"jobs,omitempty"`
	// Interval > 0 advances the build by one transition every Interval;
	// 0 leaves it to AdvanceBuild and FinishBuild.
	Interval Duration `json:"interval,omitzero"`
}

// StartJob is one job of a started build.
type StartJob struct {
	Key     string       `json:"key"`
	Name    string       `json:"name,omitempty"`
	Command string       `json:"command,omitempty"`
	Outcome string       `json:"outcome,omitempty"`
	Log     *loggen.Spec `json:"log,omitempty"`
}

// BuildRef identifies a build.
type BuildRef struct {
	Org      string `json:"org"`
	Pipeline string `json:"pipeline"`
	Number   int    `json:"number"`
	ID       string `json:"id"`
	State    string `json:"state"`
}

func refOf(b *build) BuildRef {
	return BuildRef{Org: b.pipeline.org.slug, Pipeline: b.pipeline.slug, Number: b.number, ID: b.id, State: b.state}
}

// StartBuild creates a scheduled build and emits build.scheduled and
// job.scheduled. With spec.Interval it then moves through its states on its
// own, emitting webhooks as it goes.
func (s *Server) StartBuild(spec StartSpec) (BuildRef, error) {
	if spec.Outcome == "" {
		spec.Outcome = "passed"
	}
	if spec.Outcome != "passed" && spec.Outcome != "failed" {
		return BuildRef{}, fmt.Errorf("build outcome must be passed or failed, not %q", spec.Outcome)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var pl *pipeline
	for _, p := range s.w.pipelines {
		if p.org.slug+"/"+p.slug == spec.Pipeline {
			pl = p
		}
	}
	if pl == nil {
		return BuildRef{}, fmt.Errorf("pipeline %q: %w", spec.Pipeline, ErrNotFound)
	}
	num := 1
	for _, b := range s.w.builds {
		if b.pipeline == pl && b.number >= num {
			num = b.number + 1
		}
	}
	now := s.now().Truncate(time.Millisecond)
	branch := spec.Branch
	if branch == "" {
		branch = pl.defaultBranch
	}
	b := &build{
		id: stableID("build", pl.org.slug, pl.slug, strconv.Itoa(num), strconv.FormatInt(now.UnixNano(), 10)), number: num, pipeline: pl, state: "scheduled",
		branch: branch, commit: spec.Commit, message: spec.Message, source: "api", creator: s.w.users[0], pr: spec.PullRequest,
		created: now, scheduled: now, live: true, targetOutcome: spec.Outcome,
	}
	if b.commit == "" {
		// A realistic-looking SHA-1, stable for the build.
		sum := sha1.Sum([]byte(b.id))
		b.commit = hex.EncodeToString(sum[:])
	}
	if b.message == "" {
		b.message = "Simulated build"
	}
	b.author = &AuthorSpec{Name: b.creator.name, Email: b.creator.email}
	jobs := spec.Jobs
	if len(jobs) == 0 {
		jobs = []StartJob{{Key: "test", Name: ":go: test", Command: "go test ./..."}}
	}
	lastScript := len(jobs) - 1
	for i, js := range jobs {
		if js.Key == "" {
			js.Key = "job-" + strconv.Itoa(i+1)
		}
		outcome := js.Outcome
		if outcome == "" {
			outcome = "passed"
			if spec.Outcome == "failed" && i == lastScript {
				outcome = "failed"
			}
		}
		j := &job{id: stableID("job", b.id, js.Key), key: js.Key, typ: "script", name: js.Name, command: js.Command, state: "scheduled", build: b,
			created: now, scheduled: now, agentRules: []string{"queue=default"}, plannedState: outcome}
		if j.name == "" {
			j.name = js.Key
		}
		spec := loggen.Spec{Ecosystem: "go", Seed: uint64(num)}
		if js.Log != nil {
			if err := js.Log.Validate(); err != nil {
				return BuildRef{}, fmt.Errorf("job %q log: %w", js.Key, err)
			}
			spec = *js.Log
		}
		if outcome == "failed" && spec.Failure == "" {
			spec.Failure = "test"
		}
		if outcome == "passed" {
			spec.Failure = ""
		}
		spec.Repository, spec.Commit, spec.Command = pl.repository, b.commit, js.Command
		j.log.gen = &spec
		e := spec.ExitStatus()
		j.plannedExit = &e
		b.jobs = append(b.jobs, j)
	}
	s.w.addBuild(b)
	s.emitBuild("build.scheduled", b)
	for _, j := range b.jobs {
		s.emitJob("job.scheduled", j)
	}
	if spec.Interval > 0 {
		s.wg.Add(1)
		go s.autoAdvance(b.id, time.Duration(spec.Interval))
	}
	return refOf(b), nil
}

func (s *Server) autoAdvance(id string, every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
			ref, err := s.AdvanceBuild(id)
			if err != nil || isFinishedBuild(ref.State) {
				return
			}
		}
	}
}

func isFinishedBuild(st string) bool {
	return slices.Contains([]string{"passed", "failed", "canceled", "skipped", "not_run"}, st)
}

// AdvanceBuild moves a started build one transition forward: start the next
// job, finish the running job, or finish the build. It returns the new state.
func (s *Server) AdvanceBuild(id string) (BuildRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.w.buildByID[id]
	if b == nil {
		return BuildRef{}, fmt.Errorf("build %q: %w", id, ErrNotFound)
	}
	s.step(b)
	return refOf(b), nil
}

// step performs one transition. Caller holds s.mu.
func (s *Server) step(b *build) bool {
	if isFinishedBuild(b.state) {
		return false
	}
	now := s.now().Truncate(time.Millisecond)
	for _, j := range b.jobs {
		if j.state == "running" {
			j.state = j.plannedState
			j.exit = j.plannedExit
			j.finished = &now
			s.emitJob("job.finished", j)
			if j.state == "failed" && b.state == "running" {
				b.state = "failing"
				b.failing = &now
				s.emitBuild("build.failing", b)
			}
			return true
		}
	}
	for _, j := range b.jobs {
		if j.state == "scheduled" {
			if b.state == "scheduled" {
				b.state = "running"
				b.started = &now
				s.emitBuild("build.running", b)
			}
			j.state = "running"
			j.runnable, j.started = &now, &now
			g := *j.log.gen
			g.Start = now
			j.log.gen = &g
			s.emitJob("job.started", j)
			return true
		}
	}
	b.state = "passed"
	for _, j := range b.jobs {
		if j.state == "failed" && !j.softFailed {
			b.state = "failed"
		}
	}
	b.finished = &now
	s.emitBuild("build.finished", b)
	return true
}

// FinishBuild runs a started build to the end at once. outcome "" keeps the
// planned outcome; "passed" or "failed" overrides it for jobs not yet done.
func (s *Server) FinishBuild(id, outcome string) (BuildRef, error) {
	if outcome != "" && outcome != "passed" && outcome != "failed" {
		return BuildRef{}, fmt.Errorf("build outcome must be passed or failed, not %q", outcome)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.w.buildByID[id]
	if b == nil {
		return BuildRef{}, fmt.Errorf("build %q: %w", id, ErrNotFound)
	}
	if !b.live {
		return BuildRef{}, fmt.Errorf("build %q was declared by the scenario, not started", id)
	}
	if outcome != "" {
		var open []*job
		for _, j := range b.jobs {
			if j.state == "scheduled" || j.state == "running" {
				open = append(open, j)
			}
		}
		for i, j := range open {
			st := "passed"
			if outcome == "failed" && i == len(open)-1 {
				st = "failed"
			}
			j.plannedState = st
			g := *j.log.gen
			g.Failure = ""
			if st == "failed" {
				g.Failure = "test"
			}
			j.log.gen = &g
			e := g.ExitStatus()
			j.plannedExit = &e
		}
	}
	for s.step(b) {
	}
	return refOf(b), nil
}

// control HTTP API

func (s *Server) controlRoutes() {
	h := func(pattern string, f func(r *http.Request) (any, error)) {
		s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			v, err := f(r)
			if err != nil {
				status := http.StatusBadRequest
				if errors.Is(err, ErrNotFound) {
					status = http.StatusNotFound
				}
				writeJSON(w, status, map[string]string{"error": err.Error()})
				return
			}
			if v == nil {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			writeJSON(w, http.StatusOK, v)
		})
	}
	h("GET /_sim/tokens", func(r *http.Request) (any, error) { return s.sc.Tokens(), nil })
	h("POST /_sim/tokens/{name}/revoke", func(r *http.Request) (any, error) { return nil, s.RevokeToken(r.PathValue("name")) })
	h("POST /_sim/tokens/{name}/expire", func(r *http.Request) (any, error) { return nil, s.ExpireToken(r.PathValue("name")) })
	h("PUT /_sim/tokens/{name}/scopes", func(r *http.Request) (any, error) {
		var body struct {
			Scopes []string `json:"scopes"`
		}
		if err := decodeBody(r, &body); err != nil {
			return nil, err
		}
		return nil, s.SetTokenScopes(r.PathValue("name"), body.Scopes)
	})
	h("PUT /_sim/tokens/{name}/organizations/{org}", func(r *http.Request) (any, error) {
		return nil, s.GrantOrg(r.PathValue("name"), r.PathValue("org"))
	})
	h("DELETE /_sim/tokens/{name}/organizations/{org}", func(r *http.Request) (any, error) {
		return nil, s.RevokeOrg(r.PathValue("name"), r.PathValue("org"))
	})
	h("PATCH /_sim/pipelines/{org}/{pipeline}/provider", func(r *http.Request) (any, error) {
		var body struct {
			Settings map[string]any `json:"settings"`
		}
		if err := decodeBody(r, &body); err != nil {
			return nil, err
		}
		return nil, s.SetPipelineProvider(r.PathValue("org"), r.PathValue("pipeline"), body.Settings)
	})
	h("GET /_sim/faults", func(r *http.Request) (any, error) { return s.Faults(), nil })
	h("POST /_sim/faults", func(r *http.Request) (any, error) {
		var f Fault
		if err := decodeBody(r, &f); err != nil {
			return nil, err
		}
		id, err := s.AddFault(f)
		return map[string]int{"id": id}, err
	})
	h("DELETE /_sim/faults", func(r *http.Request) (any, error) { s.ClearFaults(); return nil, nil })
	h("DELETE /_sim/faults/{id}", func(r *http.Request) (any, error) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil {
			return nil, fmt.Errorf("fault id: %w", ErrNotFound)
		}
		return nil, s.RemoveFault(id)
	})
	h("GET /_sim/requests", func(r *http.Request) (any, error) { return nonNil(s.Requests()), nil })
	h("DELETE /_sim/requests", func(r *http.Request) (any, error) { s.ResetRequests(); return nil, nil })
	h("POST /_sim/builds", func(r *http.Request) (any, error) {
		var spec StartSpec
		if err := decodeBody(r, &spec); err != nil {
			return nil, err
		}
		return s.StartBuild(spec)
	})
	h("POST /_sim/builds/{id}/advance", func(r *http.Request) (any, error) { return s.AdvanceBuild(r.PathValue("id")) })
	h("POST /_sim/builds/{id}/finish", func(r *http.Request) (any, error) {
		var body struct {
			Outcome string `json:"outcome"`
		}
		if r.ContentLength != 0 {
			if err := decodeBody(r, &body); err != nil {
				return nil, err
			}
		}
		return s.FinishBuild(r.PathValue("id"), body.Outcome)
	})
	h("GET /_sim/webhooks", func(r *http.Request) (any, error) { return s.Webhooks(), nil })
	h("POST /_sim/webhooks", func(r *http.Request) (any, error) {
		var c WebhookConfig
		if err := decodeBody(r, &c); err != nil {
			return nil, err
		}
		id, err := s.AddWebhook(c)
		return map[string]int{"id": id}, err
	})
	h("PUT /_sim/webhooks/{id}", func(r *http.Request) (any, error) {
		var c WebhookConfig
		if err := decodeBody(r, &c); err != nil {
			return nil, err
		}
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil {
			return nil, fmt.Errorf("webhook id: %w", ErrNotFound)
		}
		c.ID = id
		return nil, s.UpdateWebhook(c)
	})
	h("DELETE /_sim/webhooks/{id}", func(r *http.Request) (any, error) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil {
			return nil, fmt.Errorf("webhook id: %w", ErrNotFound)
		}
		return nil, s.RemoveWebhook(id)
	})
	h("POST /_sim/webhooks/{id}/ping", func(r *http.Request) (any, error) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil {
			return nil, fmt.Errorf("webhook id: %w", ErrNotFound)
		}
		return nil, s.PingWebhook(id)
	})
	h("GET /_sim/deliveries", func(r *http.Request) (any, error) { return nonNil(s.Deliveries()), nil })
}

// maxControlBody bounds control API request bodies.
const maxControlBody = 1 << 20

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode request body: %w", err)
	}
	return nil
}
