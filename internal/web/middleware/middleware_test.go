package middleware

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer safe for a server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTestLogger returns a JSON logger writing into a buffer.
func newTestLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// logLines parses the buffer's JSON lines.
func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

const (
	secretToken  = "kw_abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst"
	secretCookie = "kws_sessionsecretvalue2345674q2r3s4t5u6v7w"
	secretQuery  = "abc-query-secret-xyz"
	secretSetup  = "kwsetup_setuplinksecret234567abcdefghijklmnopqrstuvwxyza"
)

func TestAccessLogNeverLogsSecrets(t *testing.T) {
	logger, buf := newTestLogger()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/orgs/{org}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"ok":true}`)
	})
	mux.HandleFunc("GET /setup/{token}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	h := Chain(CaptureRoute(mux),
		RequestID,
		RealIP(nil),
		AccessLog(logger),
		Recover(logger),
		SecurityHeaders(SecurityOptions{}),
	)
	srv := httptest.NewServer(h)
	defer srv.Close()

	tests := []struct {
		path      string
		wantRoute string
		wantPath  string
		status    int
	}{
		{"/api/v1/orgs/acme?token=" + secretQuery, "GET /api/v1/orgs/{org}", "/api/v1/orgs/acme", 200},
		{"/setup/" + secretSetup + "?x=" + secretQuery, "GET /setup/{token}", "/setup/[REDACTED]", 204},
		{"/nowhere?token=" + secretQuery, "unmatched", "/nowhere", 404},
	}
	for _, tt := range tests {
		req, err := http.NewRequest("GET", srv.URL+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+secretToken)
		req.Header.Set("Cookie", "kitewatch_session="+secretCookie)
		req.Header.Set("X-Request-Id", "req-123")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Fatalf("%s: status %d, want %d", tt.path, resp.StatusCode, tt.status)
		}
	}

	out := buf.String()
	for _, secret := range []string{secretToken, secretCookie, secretQuery, secretSetup, "Bearer", "token="} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
	lines := logLines(t, out)
	if len(lines) != len(tests) {
		t.Fatalf("got %d log lines, want %d:\n%s", len(lines), len(tests), out)
	}
	for i, tt := range tests {
		l := lines[i]
		if l["route"] != tt.wantRoute || l["path"] != tt.wantPath || l["status"] != float64(tt.status) {
			t.Errorf("line %d = route %v path %v status %v; want %q %q %d", i, l["route"], l["path"], l["status"], tt.wantRoute, tt.wantPath, tt.status)
		}
		if l["method"] != "GET" || l["request_id"] != "req-123" || l["client_ip"] != "127.0.0.1" {
			t.Errorf("line %d: method/request_id/client_ip = %v/%v/%v", i, l["method"], l["request_id"], l["client_ip"])
		}
		for _, k := range []string{"bytes", "duration"} {
			if _, ok := l[k]; !ok {
				t.Errorf("line %d lacks %q", i, k)
			}
		}
	}
	if lines[0]["bytes"] != float64(len(`{"ok":true}`)) {
		t.Errorf("bytes = %v, want %d", lines[0]["bytes"], len(`{"ok":true}`))
	}
}

func TestAccessLogWithoutCaptureRoute(t *testing.T) {
	// With the mux directly inside AccessLog, r.Pattern is still found.
	logger, buf := newTestLogger()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /things", func(w http.ResponseWriter, r *http.Request) {})
	h := AccessLog(logger)(mux)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/things", nil))
	lines := logLines(t, buf.String())
	if len(lines) != 1 || lines[0]["route"] != "POST /things" || lines[0]["status"] != float64(200) {
		t.Fatalf("log = %v", lines)
	}
}

func TestAccessLogAborted(t *testing.T) {
	logger, buf := newTestLogger()
	h := AccessLog(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("recovered %v, want http.ErrAbortHandler", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	}()
	lines := logLines(t, buf.String())
	if len(lines) != 1 || lines[0]["aborted"] != true || lines[0]["level"] != "ERROR" {
		t.Fatalf("log = %v, want one aborted error line", lines)
	}
}

func TestRequestID(t *testing.T) {
	tests := []struct {
		name     string
		incoming string
		keep     bool
	}{
		{"none", "", false},
		{"sane", "abc-123_X.y", true},
		{"max length", strings.Repeat("a", 64), true},
		{"too long", strings.Repeat("a", 65), false},
		{"space", "abc 123", false},
		{"newline", "abc\n123", false},
		{"html", "<script>", false},
		{"token shaped", secretToken, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fromCtx string
			h := RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fromCtx = RequestIDFrom(r.Context())
			}))
			req := httptest.NewRequest("GET", "/", nil)
			if tt.incoming != "" {
				req.Header.Set(RequestIDHeader, tt.incoming)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := rec.Header().Get(RequestIDHeader)
			if got == "" || got != fromCtx {
				t.Fatalf("header %q, context %q; want equal and non-empty", got, fromCtx)
			}
			if tt.keep && got != tt.incoming {
				t.Errorf("id = %q, want incoming %q kept", got, tt.incoming)
			}
			if !tt.keep && (got == tt.incoming || !validRequestID(got)) {
				t.Errorf("id = %q, want a fresh valid id", got)
			}
		})
	}
	if RequestIDFrom(httptest.NewRequest("GET", "/", nil).Context()) != "" {
		t.Error("RequestIDFrom without middleware is not empty")
	}
}

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"direct", "203.0.113.5:4321", nil, "203.0.113.5"},
		{"untrusted peer ignores XFF", "203.0.113.5:4321", []string{"1.2.3.4"}, "203.0.113.5"},
		{"trusted proxy", "10.0.0.2:80", []string{"198.51.100.7"}, "198.51.100.7"},
		{"spoofed left entries", "10.0.0.2:80", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7"},
		{"chain of proxies", "10.0.0.2:80", []string{"198.51.100.7, 10.1.1.1", "10.2.2.2"}, "198.51.100.7"},
		{"all trusted", "10.0.0.2:80", []string{"10.9.9.9"}, "10.9.9.9"},
		{"no XFF", "10.0.0.2:80", nil, "10.0.0.2"},
		{"malformed entry", "10.0.0.2:80", []string{"garbage, 10.3.3.3"}, "10.3.3.3"},
		{"ipv6 proxy", "[::1]:80", []string{"2001:db8::1"}, "2001:db8::1"},
		{"v4-mapped", "[::ffff:203.0.113.5]:1", nil, "203.0.113.5"},
		{"unparsable remote", "unix-socket", nil, "unix-socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ClientIP(r, proxies); got != tt.want {
				t.Errorf("ClientIP = %q, want %q", got, tt.want)
			}
			var fromCtx string
			RealIP(proxies)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fromCtx = ClientIPFrom(r.Context())
			})).ServeHTTP(httptest.NewRecorder(), r)
			if fromCtx != tt.want {
				t.Errorf("ClientIPFrom = %q, want %q", fromCtx, tt.want)
			}
		})
	}
}

func TestStatusRecorder(t *testing.T) {
	inner := httptest.NewRecorder()
	rec := NewStatusRecorder(inner)
	if rec.Status() != 0 || rec.WroteHeader() {
		t.Fatal("fresh recorder reports a status")
	}
	rec.WriteHeader(http.StatusEarlyHints)
	if rec.WroteHeader() {
		t.Fatal("1xx recorded as the final status")
	}
	rec.WriteHeader(http.StatusCreated)
	rec.WriteHeader(http.StatusTeapot) // ignored, like net/http
	n, _ := rec.Write([]byte("hello"))
	m, _ := rec.ReadFrom(strings.NewReader(" world"))
	if rec.Status() != http.StatusCreated || rec.BytesWritten() != int64(n)+m || inner.Body.String() != "hello world" {
		t.Fatalf("status %d bytes %d body %q", rec.Status(), rec.BytesWritten(), inner.Body.String())
	}
	// ResponseController finds Flush through the recorder.
	if err := http.NewResponseController(rec).Flush(); err != nil {
		t.Fatalf("Flush through ResponseController: %v", err)
	}
	if !inner.Flushed {
		t.Fatal("Flush did not reach the underlying writer")
	}
	var _ http.Flusher = rec
	if rec.Unwrap() != inner {
		t.Fatal("Unwrap does not return the wrapped writer")
	}
	implicit := NewStatusRecorder(httptest.NewRecorder())
	implicit.Write([]byte("x"))
	if implicit.Status() != http.StatusOK {
		t.Fatalf("implicit status = %d, want 200", implicit.Status())
	}
}

func TestBodyLimit(t *testing.T) {
	const limit = 1 << 20
	handler := func(w http.ResponseWriter, r *http.Request) {
		var v any
		err := json.NewDecoder(r.Body).Decode(&v)
		switch {
		case IsBodyTooLarge(fmt.Errorf("decode request: %w", err)):
			w.WriteHeader(http.StatusRequestEntityTooLarge)
		case err != nil:
			w.WriteHeader(http.StatusBadRequest)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}
	srv := httptest.NewServer(BodyLimit(limit)(http.HandlerFunc(handler)))
	defer srv.Close()
	big := `"` + strings.Repeat("a", 2<<20) + `"`
	tests := []struct {
		name string
		body string
		want int
	}{
		{"small", `{"a":1}`, 200},
		{"malformed", `{"a":`, 400},
		{"2 MiB", big, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := srv.Client().Post(srv.URL, "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	if IsBodyTooLarge(errors.New("other")) || IsBodyTooLarge(nil) {
		t.Error("IsBodyTooLarge matches unrelated errors")
	}
}

func TestSecurityHeaders(t *testing.T) {
	tests := []struct {
		name     string
		opts     SecurityOptions
		path     string
		auth     bool
		wantHSTS string
		noStore  bool
	}{
		{"plain http page", SecurityOptions{}, "/", false, "", false},
		{"api", SecurityOptions{}, "/api/v1/user/tokens", false, "", true},
		{"bearer outside api", SecurityOptions{}, "/metrics", true, "", true},
		{"tls", SecurityOptions{TLS: true}, "/", false, "max-age=31536000", false},
		{"tls subdomains", SecurityOptions{TLS: true, HSTSIncludeSubdomains: true}, "/", false, "max-age=31536000; includeSubDomains", false},
		{"custom no-store", SecurityOptions{NoStore: func(r *http.Request) bool { return r.URL.Path == "/settings" }}, "/settings", false, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := SecurityHeaders(tt.opts)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "nope", http.StatusNotFound)
			}))
			req := httptest.NewRequest("GET", tt.path, nil)
			if tt.auth {
				req.Header.Set("Authorization", "Bearer x")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			hdr := rec.Header()
			want := map[string]string{
				"Content-Security-Policy":    DefaultCSP,
				"X-Content-Type-Options":     "nosniff",
				"Referrer-Policy":            "same-origin",
				"X-Frame-Options":            "DENY",
				"Cross-Origin-Opener-Policy": "same-origin",
			}
			for k, v := range want {
				if hdr.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, hdr.Get(k), v)
				}
			}
			for _, part := range []string{"default-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'", "img-src 'self' data:"} {
				if !strings.Contains(hdr.Get("Content-Security-Policy"), part) {
					t.Errorf("CSP lacks %q", part)
				}
			}
			if !strings.Contains(hdr.Get("Permissions-Policy"), "camera=()") {
				t.Errorf("Permissions-Policy = %q", hdr.Get("Permissions-Policy"))
			}
			if got := hdr.Get("Strict-Transport-Security"); got != tt.wantHSTS {
				t.Errorf("HSTS = %q, want %q", got, tt.wantHSTS)
			}
			if got := hdr.Get("Cache-Control") == "no-store"; got != tt.noStore {
				t.Errorf("no-store = %v, want %v", got, tt.noStore)
			}
		})
	}
}

func TestChainOrder(t *testing.T) {
	var order []string
	mw := func(name string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				order = append(order, name)
				next.ServeHTTP(w, r)
			})
		}
	}
	Chain(http.NotFoundHandler(), mw("a"), mw("b"), mw("c")).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if strings.Join(order, "") != "abc" {
		t.Fatalf("order %v, want a b c", order)
	}
}
