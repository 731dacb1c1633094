package bk

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeToken is how the fake Buildkite treats one token.
type fakeToken struct {
	scopes    []string
	expiresAt string // "" for never, else "2006-01-02 15:04:05 UTC"
	orgs      []string
	status    int    // if non-zero, every request with this token gets it
	message   string // body message for status
}

// fakeBuildkite is a small stand-in for the Buildkite REST API that records
// every request. Tests that need the full simulator use bksim instead.
type fakeBuildkite struct {
	t      testing.TB
	tokens map[string]fakeToken
	logs   map[string]string // job id → raw log
	hang   chan struct{}     // if non-nil, handlers block until it is closed
	// gate, if non-nil, is called at the start of every request.
	gate func(r *http.Request)
	// rateLimited, if true, answers 429 to everything.
	rateLimited bool

	mu       sync.Mutex
	requests []string // "METHOD path"
	auth     []string // Authorization headers seen
}

func newFake(t testing.TB, tokens map[string]fakeToken) (*fakeBuildkite, *httptest.Server) {
	f := &fakeBuildkite{t: t, tokens: tokens, logs: map[string]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeBuildkite) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeBuildkite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.mu.Unlock()
	if f.gate != nil {
		f.gate(r)
	}
	if f.hang != nil {
		select {
		case <-f.hang:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("RateLimit-Scope", "rest")
	w.Header().Set("RateLimit-Limit", "200")
	w.Header().Set("RateLimit-Remaining", "150")
	w.Header().Set("RateLimit-Reset", "30")
	w.Header().Set("RateLimit-User-Scope", "rest_user")
	w.Header().Set("RateLimit-User-Limit", "50")
	w.Header().Set("RateLimit-User-Remaining", "7")
	w.Header().Set("RateLimit-User-Reset", "20")
	if f.rateLimited {
		w.Header().Set("RateLimit-User-Remaining", "0")
		writeJSON(w, 429, map[string]any{"message": "You have exceeded your API rate limit. Please wait 42 seconds before making more requests.", "scope": "rest_user", "limit": 50, "current": 55, "reset": 42})
		return
	}
	tokStr, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	tok, ok := f.tokens[tokStr]
	if !ok {
		writeJSON(w, 401, map[string]string{"message": "Authentication required. Please supply a valid API Access Token: https://buildkite.com/docs/apis/rest-api#authentication"})
		return
	}
	if tok.status != 0 {
		writeJSON(w, tok.status, map[string]string{"message": tok.message})
		return
	}
	need := func(scope string) bool {
		for _, s := range tok.scopes {
			if s == scope {
				return true
			}
		}
		writeJSON(w, 403, map[string]string{"message": "Your access token doesn't have the " + scope + " scope"})
		return false
	}
	hasOrg := func(org string) bool {
		for _, o := range tok.orgs {
			if o == org {
				return true
			}
		}
		writeJSON(w, 404, map[string]string{"message": "No organization found"})
		return false
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == "/v2/access-token" && r.Method == http.MethodGet:
		body := map[string]any{"uuid": "b63254c0-3271-4a98-8270-7cfbd6c2f14e", "scopes": tok.scopes,
			"description": "kitewatch", "created_at": "2026-01-02 03:04:05 UTC", "expires_at": nil,
			"user": map[string]string{"name": "CI Service", "email": "ci@example.com"}}
		if tok.expiresAt != "" {
			body["expires_at"] = tok.expiresAt
		}
		writeJSON(w, 200, body)
	case r.URL.Path == "/v2/access-token" && r.Method == http.MethodDelete:
		w.WriteHeader(204)
	case r.URL.Path == "/v2/user":
		if need("read_user") {
			writeJSON(w, 200, map[string]string{"id": "u1", "name": "CI Service", "email": "ci@example.com"})
		}
	case r.URL.Path == "/v2/organizations":
		if need("read_organizations") {
			var list []map[string]string
			for _, o := range tok.orgs {
				list = append(list, map[string]string{"id": "id-" + o, "slug": o, "name": strings.ToUpper(o[:1]) + o[1:] + " Inc"})
			}
			writeJSON(w, 200, list)
		}
	case len(parts) == 4 && parts[3] == "pipelines":
		if hasOrg(parts[2]) && need("read_pipelines") {
			writeJSON(w, 200, []map[string]string{{"slug": "app"}})
		}
	case len(parts) == 10 && strings.HasPrefix(parts[9], "log"):
		if !hasOrg(parts[2]) || !need("read_build_logs") {
			return
		}
		log, ok := f.logs[parts[8]]
		if !ok {
			writeJSON(w, 404, map[string]string{"message": "No job found"})
			return
		}
		w.Header().Set("Accept-Ranges", "bytes")
		if rng := r.Header.Get("Range"); rng != "" {
			var n int
			if _, err := fmt.Sscanf(rng, "bytes=-%d", &n); err != nil || n == 0 {
				writeJSON(w, 400, map[string]string{"message": "bad range"})
				return
			}
			if len(log) == 0 {
				w.WriteHeader(416)
				return
			}
			start := max(0, len(log)-n)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(log)-1, len(log)))
			w.Header().Set("Content-Length", fmt.Sprint(len(log)-start))
			w.WriteHeader(206)
			_, _ = w.Write([]byte(log[start:]))
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(log)))
		w.Header().Set("Content-Type", "text/plain")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write([]byte(log))
	default:
		f.t.Errorf("fake buildkite: unexpected request %s %s", r.Method, r.URL)
		writeJSON(w, 404, map[string]string{"message": "Not Found"})
	}
}

// Tokens used by the tests. Each is long enough to be masked to 4 chars.
const (
	tokGood        = "bkua_good0000000000000000000000000000000a1b2"
	tokFewScopes   = "bkua_few00000000000000000000000000000000c3d4"
	tokWrite       = "bkua_write000000000000000000000000000000e5f6"
	tokExpiring    = "bkua_soon000000000000000000000000000000a7b8"
	tokExpired     = "bkua_old0000000000000000000000000000000c9d0"
	tokMultiOrg    = "bkua_multi00000000000000000000000000000e1f2"
	tokNoOrg       = "bkua_noorg00000000000000000000000000000a3b4"
	tokIP          = "bkua_iprestricted0000000000000000000000c5d6"
	tokServerError = "bkua_fivehundred00000000000000000000000e7f8"
	tokUnknown     = "bkua_unknown0000000000000000000000000000a9b0"
)

func fakeTokens(now time.Time) map[string]fakeToken {
	all := RequiredScopeNames()
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
	return map[string]fakeToken{
		tokGood:        {scopes: all, orgs: []string{"acme"}},
		tokFewScopes:   {scopes: []string{"read_builds", "read_pipelines", "read_organizations", "read_user"}, orgs: []string{"acme"}},
		tokWrite:       {scopes: append(append([]string{}, all...), "write_builds", "graphql", "read_agents"), orgs: []string{"acme"}},
		tokExpiring:    {scopes: all, orgs: []string{"acme"}, expiresAt: ts(now.Add(3 * 24 * time.Hour))},
		tokExpired:     {scopes: all, orgs: []string{"acme"}, expiresAt: ts(now.Add(-time.Hour))},
		tokMultiOrg:    {scopes: all, orgs: []string{"acme", "globex"}},
		tokNoOrg:       {scopes: all},
		tokIP:          {status: 403, message: "Forbidden"},
		tokServerError: {status: 502, message: "Bad Gateway"},
	}
}
