package bksim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Default rate limits (docs rest_api/rate_limits.md): 200 requests a minute
// per organization and 50 per user, over 60-second windows.
const (
	DefaultOrgLimit  = 200
	DefaultUserLimit = 50
	rateWindow       = time.Minute
)

// Messages Buildkite sends, byte for byte (reference §3.3).
const (
	msgAuth      = "Authentication required. Please supply a valid API Access Token: https://buildkite.com/docs/apis/rest-api#authentication"
	msgNoOrg     = "No organization found"
	msgNoPipe    = "No pipeline found"
	msgNoJob     = "No job found"
	msgNoBuild   = "No build found" // UNCONFIRMED: by analogy with the documented ones.
	msgForbidden = "Forbidden"
	msgTooDeep   = "Listing builds this deep is not supported. Please narrow your query using filters such as branch or created_from."
	warnRate     = "You have exceeded your API rate limit."
)

// Server is a simulated Buildkite: REST API v2, job logs, Test Engine, signed
// webhooks, and a control API under /_sim/. It is an http.Handler; serve it
// with httptest.NewServer or net/http. Close stops webhook delivery.
type Server struct {
	mu      sync.Mutex
	sc      *Scenario
	w       *world
	clock   func() time.Time
	base    string
	webBase string
	mux     *http.ServeMux

	orgLimit, userLimit int
	rlOrg, rlUser       map[string]*rateCount

	faults    []*Fault
	nextFault int
	reqlog    []RequestRecord

	hooks *hookHub

	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// rateCount counts the requests made in the rate-limit window that began at start.
type rateCount struct {
	start time.Time
	count int
}

// Option configures a Server.
type Option func(*Server)

// WithClock sets the source of "now" for timestamps, token expiry and rate
// windows. Scenario times are resolved against it when New runs.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.clock = now } }

// WithRateLimits sets the per-organization and per-user request limits per
// minute (defaults 200 and 50).
func WithRateLimits(perOrg, perUser int) Option {
	return func(s *Server) { s.orgLimit, s.userLimit = perOrg, perUser }
}

// WithBaseURL sets the URL printed in REST `url` fields and Link headers.
// Without it the simulator uses the scheme and Host of each request, which
// is what httptest servers need.
func WithBaseURL(u string) Option { return func(s *Server) { s.base = strings.TrimRight(u, "/") } }

// WithWebURL sets the base of `web_url` fields (default https://buildkite.com).
func WithWebURL(u string) Option { return func(s *Server) { s.webBase = strings.TrimRight(u, "/") } }

// WithWebhookClient sets the HTTP client used to deliver webhooks.
func WithWebhookClient(c *http.Client) Option { return func(s *Server) { s.hooks.client = c } }

// WithWebhookRetry sets how many times a failed delivery is attempted in all
// and the first backoff (doubled after each failure). Defaults: 3 and 1s.
// Buildkite's real policy is UNCONFIRMED (reference §10.5).
func WithWebhookRetry(attempts int, backoff time.Duration) Option {
	return func(s *Server) { s.hooks.attempts, s.hooks.backoff = attempts, backoff }
}

// New returns a server holding the scenario's state. It panics only if the
// scenario was not produced by ParseScenario, LoadScenario or Demo and is
// invalid; use ParseScenario to validate untrusted input.
func New(sc *Scenario, opts ...Option) *Server {
	s := &Server{
		sc: sc, clock: time.Now, webBase: "https://buildkite.com", orgLimit: DefaultOrgLimit, userLimit: DefaultUserLimit,
		rlOrg: map[string]*rateCount{}, rlUser: map[string]*rateCount{}, closed: make(chan struct{}),
	}
	s.hooks = newHookHub(s)
	for _, o := range opts {
		o(s)
	}
	w, err := compile(sc, s.now(), false)
	if err != nil {
		panic(fmt.Sprintf("bksim: invalid scenario: %v", err))
	}
	s.w = w
	for _, wh := range sc.Webhooks {
		_, _ = s.hooks.add(WebhookConfig{URL: wh.URL, Token: wh.Token, Mode: wh.Mode, Events: wh.Events, Pipelines: wh.Pipelines})
	}
	s.routes()
	return s
}

// Close stops webhook delivery and build progression and waits for them, and
// releases requests hung by a fault.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
	s.wg.Wait()
}

func (s *Server) now() time.Time { return s.clock().UTC() }

// baseURL returns the URL REST fields point at.
func (s *Server) baseURL(r *http.Request) string {
	if s.base != "" {
		return s.base
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// RequestRecord is one API request as the simulator saw it. Token is the
// scenario name of the token used ("" when none was sent, "(unknown)" for a
// value the scenario does not know); the token value is never recorded.
type RequestRecord struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Query  string    `json:"query,omitempty"`
	Token  string    `json:"token,omitempty"`
	Status int       `json:"status"`
}

type recWriter struct {
	http.ResponseWriter
	status int
	token  string
}

func (w *recWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *recWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.mux.ServeHTTP(w, r)
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Link")
	// Every response carries the RateLimit headers; authenticated routes
	// overwrite these with the caller's real counters.
	s.mu.Lock()
	s.setRateHeaders(h, s.orgLimit, 0, s.userLimit, 0, s.now().Add(rateWindow), s.now().Add(rateWindow))
	f := s.matchFault(r)
	s.mu.Unlock()
	rw := &recWriter{ResponseWriter: w}
	if f != nil && !s.applyFault(f, rw, r) {
		s.record(r, rw)
		return
	}
	s.mux.ServeHTTP(rw, r)
	s.record(r, rw)
}

func (s *Server) record(r *http.Request, rw *recWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	s.reqlog = append(s.reqlog, RequestRecord{Time: s.now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Token: rw.token, Status: status})
}

// apiError is an error with the status and message Buildkite would answer.
type apiError struct {
	status int
	msg    string
	extra  map[string]any
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

func errStatus(status int, msg string) error { return &apiError{status: status, msg: msg} }

// call is one authenticated API request in progress.
type call struct {
	s      *Server
	w      http.ResponseWriter
	r      *http.Request
	tok    *token
	org    *org
	locked bool
}

// unlock releases the server lock before a long stream; safe to call twice.
func (c *call) unlock() {
	if c.locked {
		c.locked = false
		c.s.mu.Unlock()
	}
}

func (c *call) rd() renderer {
	canEdit := c.tok != nil && c.tok.hasScope("write_pipelines")
	return renderer{base: c.s.baseURL(c.r), web: c.s.webBase, canEdit: canEdit}
}

type handlerFunc func(c *call) error

// noAuth marks routes that need no token.
const noAuth = "-"

// api registers a REST route. scope "" means a token is needed but no scope
// (access-token); noAuth means no token at all.
func (s *Server) api(pattern, scope string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		c := &call{s: s, w: w, r: r, locked: true}
		defer c.unlock()
		if err := s.authorize(c, scope); err != nil {
			writeError(w, err)
			return
		}
		if err := h(c); err != nil {
			writeError(w, err)
		}
	})
}

func (s *Server) authorize(c *call, scope string) error {
	if scope == noAuth {
		return nil
	}
	rw, _ := c.w.(*recWriter)
	setTok := func(name string) {
		if rw != nil {
			rw.token = name
		}
	}
	// Only "Bearer <token>" is accepted; HTTP Basic is not supported.
	auth := c.r.Header.Get("Authorization")
	value, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || value == "" {
		return errStatus(http.StatusUnauthorized, msgAuth)
	}
	tok := s.w.tokByVal[value]
	if tok == nil {
		setTok("(unknown)")
		return errStatus(http.StatusUnauthorized, msgAuth)
	}
	setTok(tok.name)
	// Wrong-kind tokens (agent, cluster, job, registry, portal, token
	// exchange, suite): what api.buildkite.com answers is UNCONFIRMED; the
	// reference's guess is the unknown-token 401.
	if tok.kind != "user" {
		return errStatus(http.StatusUnauthorized, msgAuth)
	}
	// Expired tokens: UNCONFIRMED, presumably the same 401.
	if tok.revoked || (tok.expires != nil && !s.now().Before(*tok.expires)) {
		return errStatus(http.StatusUnauthorized, msgAuth)
	}
	if len(tok.allowed) > 0 && !ipAllowed(c.r.RemoteAddr, tok.allowed) {
		// UNCONFIRMED: the reference's guess for an IP allowlist rejection.
		return errStatus(http.StatusForbidden, msgForbidden)
	}
	c.tok = tok
	slug := c.r.PathValue("org")
	if err := s.rateLimit(c, slug); err != nil {
		return err
	}
	if scope != "" && !tok.hasScope(scope) && !(scope == "read_organizations" && c.r.URL.Path == rateLimitPath(slug) && tok.hasScope("read_accounts")) {
		return errStatus(http.StatusForbidden, "Your access token doesn't have the "+scope+" scope")
	}
	if slug != "" {
		og := s.w.orgBySlug[slug]
		if og == nil || !tok.canOrg(slug) {
			return errStatus(http.StatusNotFound, msgNoOrg)
		}
		c.org = og
	}
	return nil
}

func rateLimitPath(slug string) string { return "/v2/organizations/" + slug + "/rate_limit" }

func ipAllowed(remote string, allowed []netip.Prefix) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range allowed {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (s *Server) window(m map[string]*rateCount, key string) *rateCount {
	now := s.now()
	w := m[key]
	if w == nil || !now.Before(w.start.Add(rateWindow)) {
		w = &rateCount{start: now}
		m[key] = w
	}
	return w
}

// rateLimit counts the request against the organization and user windows,
// sets the RateLimit headers and reports a 429 when either is exceeded. The
// organization of routes without one in the path is the token's first
// organization (UNCONFIRMED).
func (s *Server) rateLimit(c *call, slug string) error {
	if slug == "" && len(c.tok.orgs) > 0 {
		slug = c.tok.orgs[0]
	}
	uw := s.window(s.rlUser, c.tok.user.id)
	uw.count++
	ow := &rateCount{start: s.now()}
	if slug != "" {
		ow = s.window(s.rlOrg, slug)
		ow.count++
	}
	h := c.w.Header()
	s.setRateHeaders(h, s.orgLimit, ow.count, s.userLimit, uw.count, ow.start.Add(rateWindow), uw.start.Add(rateWindow))
	scope, limit, current, reset := "", 0, 0, time.Time{}
	if uw.count > s.userLimit {
		scope, limit, current, reset = "rest_user", s.userLimit, uw.count, uw.start.Add(rateWindow)
	} else if ow.count > s.orgLimit {
		scope, limit, current, reset = "rest", s.orgLimit, ow.count, ow.start.Add(rateWindow)
	}
	if scope == "" {
		return nil
	}
	secs := s.secondsUntil(reset)
	return &apiError{status: http.StatusTooManyRequests, msg: fmt.Sprintf("You have exceeded your API rate limit. Please wait %d seconds before making more requests.", secs),
		extra: map[string]any{"scope": scope, "limit": limit, "current": current, "reset": secs}}
}

func (s *Server) secondsUntil(t time.Time) int {
	return int(math.Ceil(t.Sub(s.now()).Seconds()))
}

func (s *Server) setRateHeaders(h http.Header, orgLimit, orgCount, userLimit, userCount int, orgReset, userReset time.Time) {
	h.Set("RateLimit-Scope", "rest")
	h.Set("RateLimit-Limit", strconv.Itoa(orgLimit))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(0, orgLimit-orgCount)))
	h.Set("RateLimit-Reset", strconv.Itoa(s.secondsUntil(orgReset)))
	h.Set("RateLimit-User-Scope", "rest_user")
	h.Set("RateLimit-User-Limit", strconv.Itoa(userLimit))
	h.Set("RateLimit-User-Remaining", strconv.Itoa(max(0, userLimit-userCount)))
	h.Set("RateLimit-User-Reset", strconv.Itoa(s.secondsUntil(userReset)))
	h.Del("RateLimit-Warning")
	h.Del("RateLimit-User-Warning")
	if orgCount >= orgLimit {
		h.Set("RateLimit-Warning", warnRate)
	}
	if userCount >= userLimit {
		h.Set("RateLimit-User-Warning", warnRate)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		// Internal details stay out of responses.
		ae = &apiError{status: http.StatusInternalServerError, msg: "Internal Server Error"}
	}
	body := map[string]any{"message": ae.msg}
	for k, v := range ae.extra {
		body[k] = v
	}
	writeJSON(w, ae.status, orderedError(body))
}

// orderedError keeps "message" first, then the other keys in a fixed order,
// matching the documented 429 body.
func orderedError(m map[string]any) json.RawMessage {
	var b strings.Builder
	b.WriteByte('{')
	keys := []string{"message"}
	for _, k := range []string{"scope", "limit", "current", "reset", "errors"} {
		if _, ok := m[k]; ok {
			keys = append(keys, k)
		}
	}
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(m[k])
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return json.RawMessage(b.String())
}

// page reads page and per_page (default 30, max 100).
func page(r *http.Request) (pg, per int) {
	q := r.URL.Query()
	pg, _ = strconv.Atoi(q.Get("page"))
	if pg < 1 {
		pg = 1
	}
	per, _ = strconv.Atoi(q.Get("per_page"))
	if per < 1 {
		per = 30
	}
	return pg, min(per, 100)
}

// paginate returns one page of items and sets the Link header, whose URLs
// keep the caller's other query parameters.
func paginate[T any](c *call, items []T) []T {
	pg, per := page(c.r)
	last := max(1, (len(items)+per-1)/per)
	link := func(n int, rel string) string {
		q := c.r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		q.Set("per_page", strconv.Itoa(per))
		return fmt.Sprintf("<%s%s?%s>; rel=%q", c.s.baseURL(c.r), c.r.URL.Path, encodeQuery(q), rel)
	}
	var links []string
	if pg > 1 {
		links = append(links, link(1, "first"), link(min(pg-1, last), "prev"))
	}
	if pg < last {
		links = append(links, link(pg+1, "next"), link(last, "last"))
	}
	if len(links) > 0 {
		c.w.Header().Set("Link", strings.Join(links, ", "))
	}
	start := (pg - 1) * per
	if start >= len(items) {
		return []T{}
	}
	return items[start:min(len(items), start+per)]
}

// encodeQuery is url.Values.Encode but keeps "[]" readable, as Buildkite's
// own links do for state[] and branch[].
func encodeQuery(q url.Values) string {
	return strings.NewReplacer("%5B", "[", "%5D", "]").Replace(q.Encode())
}

// multi returns the values of name and name[].
func multi(q url.Values, name string) []string {
	var out []string
	for _, v := range append(slices.Clone(q[name]), q[name+"[]"]...) {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

func boolParam(q url.Values, name string) bool {
	v := q.Get(name)
	return v == "true" || v == "1"
}
