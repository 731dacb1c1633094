package bk

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/secrets"
)

func newTestClient(t *testing.T, url, token string, opts ...Option) *Client {
	t.Helper()
	c, err := NewClient(url, secrets.NewSecret(token), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRateLimitIsTypedAndNotRetried(t *testing.T) {
	fake, srv := newFake(t, fakeTokens(testNow))
	fake.rateLimited = true
	c := newTestClient(t, srv.URL, tokGood)
	// go-buildkite would retry a GET 429 for up to 15 minutes; the deadline
	// only guards the test from hanging if that ever came back.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := time.Now()
	_, err := c.AccessToken(ctx)
	var rl *RateLimitError
	if !errors.As(err, &rl) || !IsRateLimited(err) {
		t.Fatalf("err = %v, want *RateLimitError", err)
	}
	if fake.count() != 1 {
		t.Fatalf("server saw %d requests, want 1 (no retry)", fake.count())
	}
	if rl.Scope != "rest_user" || rl.Limit != 50 || rl.Current != 55 || rl.Reset.Before(before.Add(41*time.Second)) {
		t.Fatalf("RateLimitError = %+v", rl)
	}
	if strings.Contains(err.Error(), tokGood[5:]) {
		t.Fatalf("error contains token: %v", err)
	}
}

func TestRateLimitSnapshot(t *testing.T) {
	_, srv := newFake(t, fakeTokens(testNow))
	c := newTestClient(t, srv.URL, tokGood)
	if !c.RateLimit().SeenAt.IsZero() {
		t.Fatal("snapshot before any call is not empty")
	}
	if _, err := c.CurrentUser(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := c.RateLimit()
	if s.Org == nil || s.Org.Limit != 200 || s.Org.Remaining != 150 || s.Org.Scope != "rest" {
		t.Fatalf("Org = %+v", s.Org)
	}
	if s.User == nil || s.User.Limit != 50 || s.User.Remaining != 7 || s.User.Scope != "rest_user" {
		t.Fatalf("User = %+v", s.User)
	}
	if s.Scope != "rest_user" || s.Remaining != 7 || s.Reset.IsZero() {
		t.Fatalf("tightest = %+v", s)
	}
}

func TestAPIErrors(t *testing.T) {
	_, srv := newFake(t, fakeTokens(testNow))
	ctx := context.Background()
	_, err := newTestClient(t, srv.URL, tokUnknown).CurrentUser(ctx)
	if !IsUnauthorized(err) {
		t.Fatalf("unknown token: %v, want 401", err)
	}
	_, err = newTestClient(t, srv.URL, tokFewScopes).CurrentUser(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = newTestClient(t, srv.URL, tokGood).ProbeOrganization(ctx, "initech")
	if !IsNotFound(err) {
		t.Fatalf("other org: %v, want 404", err)
	}
	_, err = newTestClient(t, srv.URL, tokFewScopes).JobLogTail(ctx, "acme", "app", 1, "j1", 10)
	var ae *APIError
	if !errors.As(err, &ae) || ae.MissingScope() != "read_build_logs" || !IsForbidden(err) {
		t.Fatalf("missing scope: %v", err)
	}
	for _, tok := range []string{tokUnknown, tokFewScopes, tokGood} {
		for _, e := range []error{err} {
			if strings.Contains(e.Error(), tok[5:]) {
				t.Fatalf("error %q contains a token", e)
			}
		}
	}
}

func TestNewClientRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"ftp://x", "api.buildkite.com", "https://user:bkua_secret@api.buildkite.com", "https://api.buildkite.com/?token=x"} {
		_, err := NewClient(u, secrets.NewSecret(tokGood))
		if err == nil {
			t.Errorf("NewClient(%q) succeeded", u)
		} else if strings.Contains(err.Error(), "bkua_secret") {
			t.Errorf("error %q echoes credentials", err)
		}
	}
}

func TestTokenNotSentToOtherHosts(t *testing.T) {
	var gotAuth []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = append(gotAuth, r.Header.Get("Authorization"))
		_, _ = io.WriteString(w, "log")
	}))
	t.Cleanup(other.Close)
	c := newTestClient(t, "http://127.0.0.1:1", tokGood)
	resp, err := c.http.Get(other.URL + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(gotAuth) != 1 || gotAuth[0] != "" {
		t.Fatalf("other host got Authorization %q", gotAuth)
	}
}

func TestJobLogs(t *testing.T) {
	fake, srv := newFake(t, fakeTokens(testNow))
	log := strings.Repeat("line of output\n", 100) + "🚨 Error: The command exited with status 1\n"
	fake.logs["j1"] = log
	fake.logs["empty"] = ""
	ctx := context.Background()
	c := newTestClient(t, srv.URL, tokGood)

	rc, err := c.JobLog(ctx, "acme", "app", 7, "j1")
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(data) != log {
		t.Fatalf("JobLog = %d bytes, %v", len(data), err)
	}

	size, err := c.JobLogSize(ctx, "acme", "app", 7, "j1")
	if err != nil || size != int64(len(log)) {
		t.Fatalf("JobLogSize = %d, %v; want %d", size, err, len(log))
	}
	if _, err := c.JobLogSize(ctx, "acme", "app", 7, "nope"); !IsNotFound(err) {
		t.Fatalf("JobLogSize(missing) = %v, want 404", err)
	}

	tail, err := c.JobLogTail(ctx, "acme", "app", 7, "j1", 44)
	if err != nil || string(tail) != log[len(log)-44:] {
		t.Fatalf("JobLogTail = %q, %v", tail, err)
	}
	tail, err = c.JobLogTail(ctx, "acme", "app", 7, "j1", 1<<20)
	if err != nil || string(tail) != log {
		t.Fatalf("JobLogTail(longer than log) = %d bytes, %v", len(tail), err)
	}
	tail, err = c.JobLogTail(ctx, "acme", "app", 7, "empty", 10)
	if err != nil || len(tail) != 0 {
		t.Fatalf("JobLogTail(empty) = %q, %v", tail, err)
	}

	small := newTestClient(t, srv.URL, tokGood, WithMaxLogBytes(100))
	if _, err := small.JobLog(ctx, "acme", "app", 7, "j1"); !errors.Is(err, ErrLogTooLarge) {
		t.Fatalf("JobLog over cap = %v, want ErrLogTooLarge", err)
	}
	if _, err := small.JobLogTail(ctx, "acme", "app", 7, "j1", 101); !errors.Is(err, ErrLogTooLarge) {
		t.Fatalf("JobLogTail over cap = %v, want ErrLogTooLarge", err)
	}
}

func TestCappedBodyWithoutContentLength(t *testing.T) {
	b := &cappedBody{rc: io.NopCloser(strings.NewReader(strings.Repeat("x", 50))), left: 20, cancel: func() {}}
	data, err := io.ReadAll(b)
	if !errors.Is(err, ErrLogTooLarge) || len(data) != 20 {
		t.Fatalf("read %d bytes, err %v; want 20 and ErrLogTooLarge", len(data), err)
	}
}

func TestReadTailIgnoringRange(t *testing.T) {
	data, err := readTail(strings.NewReader(strings.Repeat("a", 100000)+"END"), 3, false)
	if err != nil || string(data) != "END" {
		t.Fatalf("readTail = %q, %v", data, err)
	}
}

func TestJobLogHeaderTimeout(t *testing.T) {
	fake, srv := newFake(t, fakeTokens(testNow))
	fake.hang = make(chan struct{})
	t.Cleanup(func() { close(fake.hang) })
	c := newTestClient(t, srv.URL, tokGood, WithTimeout(100*time.Millisecond))
	_, err := c.JobLog(context.Background(), "acme", "app", 1, "j1")
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Reason != ReasonTimeout {
		t.Fatalf("err = %v, want timeout", err)
	}
}

// TestUnsafePathsAreNeverSent checks that a slug or id that would change the
// request path (from storage written before slugs were checked, or from a
// webhook) is refused before the token leaves the process.
func TestUnsafePathsAreNeverSent(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "[]")
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL, tokGood)
	ctx := t.Context()
	calls := map[string]func() error{
		"probe dotdot":     func() error { return c.ProbeOrganization(ctx, "acme/../../user") },
		"probe empty":      func() error { return c.ProbeOrganization(ctx, "") },
		"builds dotdot":    func() error { _, err := c.ListBuilds(ctx, "..", BuildListOptions{}); return err },
		"builds slash":     func() error { _, err := c.ListBuilds(ctx, "acme/x", BuildListOptions{}); return err },
		"build empty":      func() error { _, err := c.GetBuild(ctx, "acme", "", 1); return err },
		"job env dot":      func() error { _, err := c.JobEnv(ctx, "acme", "api", 1, "."); return err },
		"log dotdot":       func() error { _, err := c.JobLogSize(ctx, "acme", "api", 1, ".."); return err },
		"failed execs pct": func() error { _, err := c.FailedExecutions(ctx, "acme", "suite", "a%2fb"); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("%s: err = %v, want ErrUnsafePath", name, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}
	// Plain slugs and ids still go through.
	if _, err := c.ListPipelines(ctx, "acme_1-x", 1); err != nil {
		t.Fatalf("plain slug: %v", err)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("plain slug: %d requests, want 1", n)
	}
}
