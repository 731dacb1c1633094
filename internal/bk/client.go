package bk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	buildkite "github.com/buildkite/go-buildkite/v4"

	"github.com/kitewatch/kitewatch/internal/secrets"
)

// DefaultBaseURL is the public Buildkite REST API.
const DefaultBaseURL = "https://api.buildkite.com"

// Defaults for client options.
const (
	DefaultTimeout     = 15 * time.Second
	DefaultMaxLogBytes = 64 << 20
	DefaultLogTimeout  = 5 * time.Minute
)

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// Client is a Buildkite REST client for one token. It is safe for concurrent
// use. Every call runs under its own deadline (WithTimeout) inside the
// caller's context.
type Client struct {
	gobk        *buildkite.Client
	http        *http.Client
	base        *url.URL
	token       secrets.Secret
	budget      *budget
	timeout     time.Duration
	logTimeout  time.Duration
	maxLogBytes int64
}

type clientConfig struct {
	httpClient  *http.Client
	timeout     time.Duration
	logTimeout  time.Duration
	maxLogBytes int64
	userAgent   string
}

// Option configures a Client.
type Option func(*clientConfig)

// WithHTTPClient makes the client send requests through hc's transport (its
// Timeout, Jar and CheckRedirect are kept). The default is a plain transport
// like http.DefaultTransport.
func WithHTTPClient(hc *http.Client) Option { return func(c *clientConfig) { c.httpClient = hc } }

// WithTimeout sets the deadline of each API call (default 15 s).
func WithTimeout(d time.Duration) Option { return func(c *clientConfig) { c.timeout = d } }

// WithLogTimeout sets how long a job log may take to stream in full
// (default 5 min); the headers still have to arrive within WithTimeout.
func WithLogTimeout(d time.Duration) Option { return func(c *clientConfig) { c.logTimeout = d } }

// WithMaxLogBytes caps how many bytes JobLog returns before failing with
// ErrLogTooLarge (default 64 MiB).
func WithMaxLogBytes(n int64) Option { return func(c *clientConfig) { c.maxLogBytes = n } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *clientConfig) { c.userAgent = ua } }

// NewClient returns a client for the API at baseURL (DefaultBaseURL when
// empty) authenticating with token. It fails if baseURL is not an absolute
// http(s) URL without credentials; it makes no request.
func NewClient(baseURL string, token secrets.Secret, opts ...Option) (*Client, error) {
	cfg := clientConfig{
		timeout:     DefaultTimeout,
		logTimeout:  DefaultLogTimeout,
		maxLogBytes: DefaultMaxLogBytes,
		userAgent:   "kitewatch",
	}
	for _, o := range opts {
		o(&cfg)
	}
	base, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	var inner http.RoundTripper = http.DefaultTransport
	hc := &http.Client{}
	if cfg.httpClient != nil {
		*hc = *cfg.httpClient
		if cfg.httpClient.Transport != nil {
			inner = cfg.httpClient.Transport
		}
	}
	b := &budget{}
	hc.Transport = &transport{inner: inner, base: base, token: token, budget: b, userAgent: cfg.userAgent}

	gobk, err := buildkite.NewClient(
		buildkite.WithBaseURL(base.String()+"/"),
		buildkite.WithHTTPClient(hc),
		buildkite.WithUserAgent(cfg.userAgent),
	)
	if err != nil {
		return nil, fmt.Errorf("create buildkite client: %w", err)
	}
	return &Client{
		gobk: gobk, http: hc, base: base, token: token, budget: b,
		timeout: cfg.timeout, logTimeout: cfg.logTimeout, maxLogBytes: cfg.maxLogBytes,
	}, nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	if raw == "" {
		raw = DefaultBaseURL
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("buildkite API URL must be an absolute http(s) URL such as %s", DefaultBaseURL)
	}
	if u.User != nil {
		return nil, errors.New("buildkite API URL must not contain credentials; the token goes in the token field")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("buildkite API URL must not contain a query or fragment")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// BaseURL returns the API base URL without a trailing slash.
func (c *Client) BaseURL() string { return c.base.String() }

// RateLimit returns the budget from the most recent response that carried
// RateLimit-* headers.
func (c *Client) RateLimit() RateLimitSnapshot { return c.budget.snapshot() }

// call runs fn under the per-call deadline and normalises its error.
func (c *Client) call(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.normalise(ctx, fn(ctx))
}

// normalise maps go-buildkite and transport errors to this package's types.
func (c *Client) normalise(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var er *buildkite.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		ae := &APIError{Status: er.Response.StatusCode, Message: er.Message}
		if er.Response.Request != nil {
			ae.Method, ae.Path = er.Response.Request.Method, er.Response.Request.URL.Path
		}
		err = ae
	}
	if ae := (*APIError)(nil); errors.As(err, &ae) && ae.Status >= 500 {
		err = &UnreachableError{Reason: ReasonServerError, Err: ae}
	}
	return scrub(classifyTransport(ctx, err), c.token.Reveal())
}

// TokenInfo describes the token, from GET /v2/access-token.
type TokenInfo struct {
	UUID        string
	Scopes      []string
	Description string
	OwnerName   string
	OwnerEmail  string
	CreatedAt   *time.Time // nil if unknown
	ExpiresAt   *time.Time // nil if it never expires or is unknown
}

func tsPtr(ts *buildkite.Timestamp) *time.Time {
	if ts == nil || ts.IsZero() {
		return nil
	}
	t := ts.Time.UTC()
	return &t
}

// AccessToken returns facts about the client's token. It needs no scope; a
// 401 means the token is invalid, expired or revoked.
func (c *Client) AccessToken(ctx context.Context) (TokenInfo, error) {
	var at buildkite.AccessToken
	err := c.call(ctx, func(ctx context.Context) (err error) {
		at, _, err = c.gobk.AccessTokens.Get(ctx)
		return err
	})
	if err != nil {
		return TokenInfo{}, fmt.Errorf("get access token: %w", err)
	}
	return TokenInfo{
		UUID: at.UUID, Scopes: at.Scopes, Description: at.Description,
		OwnerName: at.User.Name, OwnerEmail: at.User.Email,
		CreatedAt: tsPtr(at.CreatedAt), ExpiresAt: tsPtr(at.ExpiresAt),
	}, nil
}

// RevokeToken revokes the client's token (DELETE /v2/access-token). After it
// succeeds the token gets 401 everywhere.
func (c *Client) RevokeToken(ctx context.Context) error {
	err := c.call(ctx, func(ctx context.Context) error {
		_, err := c.gobk.AccessTokens.Revoke(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke access token: %w", err)
	}
	return nil
}

// User is the Buildkite user who owns the token.
type User struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

// CurrentUser returns the token's user (GET /v2/user, scope read_user).
func (c *Client) CurrentUser(ctx context.Context) (User, error) {
	var u buildkite.User
	err := c.call(ctx, func(ctx context.Context) (err error) {
		u, _, err = c.gobk.User.CurrentUser(ctx)
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("get current user: %w", err)
	}
	return User{ID: u.ID, Name: u.Name, Email: u.Email}, nil
}

// OrgRef identifies a Buildkite organization.
type OrgRef struct {
	Slug string `json:"slug"`
	Name string `json:"name"`
	ID   string `json:"id"`
}

// Organizations lists the organizations the token can access (GET
// /v2/organizations, scope read_organizations), first page of up to 100.
func (c *Client) Organizations(ctx context.Context) ([]OrgRef, error) {
	var orgs []buildkite.Organization
	err := c.call(ctx, func(ctx context.Context) (err error) {
		orgs, _, err = c.gobk.Organizations.List(ctx, &buildkite.OrganizationListOptions{
			ListOptions: buildkite.ListOptions{PerPage: 100},
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list organizations: %w", err)
	}
	refs := make([]OrgRef, 0, len(orgs))
	for _, o := range orgs {
		refs = append(refs, OrgRef{Slug: o.Slug, Name: o.Name, ID: o.ID})
	}
	return refs, nil
}

// ProbeOrganization proves the token can read inside organization org with
// one cheap call (GET /v2/organizations/{org}/pipelines?per_page=1, scope
// read_pipelines). A 404 means no access to that organization.
func (c *Client) ProbeOrganization(ctx context.Context, org string) error {
	// go-buildkite puts the slug into the path unescaped and resolves it,
	// so a stored slug like "acme/../../user" would read another endpoint.
	if org == "" || !ValidSlug(org) {
		return fmt.Errorf("probe organization: %w", ErrUnsafePath)
	}
	err := c.call(ctx, func(ctx context.Context) error {
		_, _, err := c.gobk.Pipelines.List(ctx, org, &buildkite.PipelineListOptions{
			ListOptions: buildkite.ListOptions{PerPage: 1},
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("probe organization %q: %w", org, err)
	}
	return nil
}

// transport authenticates requests to the API host, records the rate-limit
// budget and turns 429 answers into *RateLimitError before go-buildkite can
// retry them.
type transport struct {
	inner     http.RoundTripper
	base      *url.URL
	token     secrets.Secret
	budget    *budget
	userAgent string
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == t.base.Host {
		if err := checkPath(req.URL); err != nil {
			return nil, err
		}
	}
	req = req.Clone(req.Context())
	// The token only goes to the API host: never to a redirect target such
	// as an artifact's signed S3 URL.
	if req.URL.Scheme == t.base.Scheme && req.URL.Host == t.base.Host {
		req.Header.Set("Authorization", "Bearer "+t.token.Reveal())
	} else {
		req.Header.Del("Authorization")
	}
	if req.Header.Get("User-Agent") == "" && t.userAgent != "" {
		req.Header.Set("User-Agent", t.userAgent)
	}
	resp, err := t.inner.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	t.budget.record(resp.Header, now)
	if resp.StatusCode == http.StatusTooManyRequests {
		defer resp.Body.Close()
		return nil, rateLimitErrorFrom(resp, now)
	}
	return resp, nil
}

// ErrUnsafePath is returned, before anything is sent, for an API request
// whose path a slug or id from storage or a webhook would change: a "." or
// ".." segment, an empty segment, or an escaped character. Buildkite's
// slugs and ids never contain them.
var ErrUnsafePath = errors.New("refusing an API path built from a malformed slug or id")

// ValidSlug reports whether s is shaped like a Buildkite organization or
// pipeline slug: at most 100 letters, digits, dashes and underscores.
func ValidSlug(s string) bool {
	if len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// checkPath refuses request paths with dot, empty or escaped segments.
func checkPath(u *url.URL) error {
	if strings.Contains(u.EscapedPath(), "%") {
		return ErrUnsafePath
	}
	segs := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	for i, seg := range segs {
		if seg == "." || seg == ".." || (seg == "" && i < len(segs)-1) {
			return ErrUnsafePath
		}
	}
	return nil
}

func rateLimitErrorFrom(resp *http.Response, now time.Time) *RateLimitError {
	var body struct {
		Message string `json:"message"`
		Scope   string `json:"scope"`
		Limit   int    `json:"limit"`
		Current int    `json:"current"`
		Reset   *int   `json:"reset"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = json.Unmarshal(data, &body)
	e := &RateLimitError{Scope: body.Scope, Limit: body.Limit, Current: body.Current, Message: body.Message}
	reset := -1
	if body.Reset != nil {
		reset = *body.Reset
	}
	h := resp.Header
	if reset < 0 {
		// Whichever scope is exhausted says when it resets.
		for _, p := range []string{"RateLimit-User-", "RateLimit-"} {
			if h.Get(p+"Remaining") == "0" {
				if n, err := strconv.Atoi(h.Get(p + "Reset")); err == nil {
					reset = n
					if e.Scope == "" {
						e.Scope = map[string]string{"RateLimit-User-": "rest_user", "RateLimit-": "rest"}[p]
					}
					break
				}
			}
		}
	}
	if reset < 0 {
		if n, err := strconv.Atoi(h.Get("Retry-After")); err == nil {
			reset = n
		}
	}
	if reset < 0 {
		reset = 60 // the window is 60 s
	}
	e.Reset = now.Add(time.Duration(reset) * time.Second).Truncate(time.Second)
	return e
}

// RateLimitScope is one rate-limit scope's budget.
type RateLimitScope struct {
	Scope     string    `json:"scope"` // "rest" or "rest_user"
	Limit     int       `json:"limit"`
	Remaining int       `json:"remaining"`
	Reset     time.Time `json:"reset"` // when the window resets
}

// RateLimitSnapshot is the rate-limit budget seen on the latest response that
// carried RateLimit-* headers. Org is the organization-wide limit
// (RateLimit-*), User the per-user limit (RateLimit-User-*); either may be
// nil if the headers were absent. Limit, Remaining, Reset and Scope repeat
// whichever of the two has the fewest requests remaining.
type RateLimitSnapshot struct {
	Limit     int             `json:"limit"`
	Remaining int             `json:"remaining"`
	Reset     time.Time       `json:"reset"`
	Scope     string          `json:"scope"`
	Org       *RateLimitScope `json:"org,omitempty"`
	User      *RateLimitScope `json:"user,omitempty"`
	SeenAt    time.Time       `json:"seen_at"` // zero if no response carried the headers yet
}

type budget struct {
	mu   sync.Mutex
	snap RateLimitSnapshot
}

func parseScope(h http.Header, prefix, defaultScope string, now time.Time) *RateLimitScope {
	lim, err1 := strconv.Atoi(h.Get(prefix + "Limit"))
	rem, err2 := strconv.Atoi(h.Get(prefix + "Remaining"))
	if err1 != nil || err2 != nil {
		return nil
	}
	s := &RateLimitScope{Scope: h.Get(prefix + "Scope"), Limit: lim, Remaining: rem}
	if s.Scope == "" {
		s.Scope = defaultScope
	}
	if r, err := strconv.Atoi(h.Get(prefix + "Reset")); err == nil {
		s.Reset = now.Add(time.Duration(r) * time.Second).Truncate(time.Second)
	}
	return s
}

func (b *budget) record(h http.Header, now time.Time) {
	org := parseScope(h, "RateLimit-", "rest", now)
	user := parseScope(h, "RateLimit-User-", "rest_user", now)
	if org == nil && user == nil {
		return
	}
	snap := RateLimitSnapshot{Org: org, User: user, SeenAt: now}
	tight := org
	if tight == nil || (user != nil && user.Remaining < org.Remaining) {
		tight = user
	}
	snap.Limit, snap.Remaining, snap.Reset, snap.Scope = tight.Limit, tight.Remaining, tight.Reset, tight.Scope
	b.mu.Lock()
	b.snap = snap
	b.mu.Unlock()
}

func (b *budget) snapshot() RateLimitSnapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.snap
	if s.Org != nil {
		o := *s.Org
		s.Org = &o
	}
	if s.User != nil {
		u := *s.User
		s.User = &u
	}
	return s
}
