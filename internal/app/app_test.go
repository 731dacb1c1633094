package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/app"
	"github.com/kitewatch/kitewatch/internal/cli"
	"github.com/kitewatch/kitewatch/internal/config"
	"github.com/kitewatch/kitewatch/internal/secrets"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/store/sqlite"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type server struct {
	URL     string
	DataDir string
	Logs    *syncBuffer
	Out     *syncBuffer
}

// startServer runs a whole kitewatch server on 127.0.0.1:0 with a SQLite
// database in dataDir, logging at debug level into a buffer.
func startServer(t *testing.T, dataDir string, opts ...func(*config.Config)) *server {
	t.Helper()
	return startServerClock(t, dataDir, nil, opts...)
}

// startServerClock is startServer with the store's clock (which the
// webhook intake, the poller and the diagnostics read) set to now.
func startServerClock(t *testing.T, dataDir string, now func() time.Time, opts ...func(*config.Config)) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = dataDir
	cfg.LogLevel = "debug"
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs, out := &syncBuffer{}, &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	db, err := sqlite.Open(ctx, filepath.Join(dataDir, sqlite.FileName), store.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	keeper, id, err := secrets.OpenKeeper(ctx, "", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secrets.NewKeyring(secrets.NamedKeeper{ID: id, Keeper: keeper})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, cfg, app.Deps{DB: db, Logger: logger, Out: out, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		a.Close()
	})
	waitReady(t, a.URL())
	return &server{URL: a.URL(), DataDir: dataDir, Logs: logs, Out: out}
}

// kw runs a kitewatch CLI command in-process and returns its stdout.
func kw(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := cli.Main(context.Background(), args, strings.NewReader(stdin), &out, &errb); code != 0 {
		t.Fatalf("kitewatch %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return out.String()
}

type resp struct {
	Status int
	Body   string
	Header http.Header
}

func do(t *testing.T, method, url, token string, body io.Reader, header ...string) resp {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{Status: res.StatusCode, Body: string(b), Header: res.Header}
}

func errCode(t *testing.T, r resp) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.Body), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not a JSON error body (status %d): %q", r.Status, r.Body)
	}
	return e.Error.Code
}

const (
	adminPassword  = "correct horse battery staple"
	memberPassword = "member password 12345"
)

// seed creates two organizations, an admin and a member of acme, an admin of
// other, and an API token for each, through the admin commands.
func seed(t *testing.T, dataDir string) (adminTok, memberTok, otherTok string) {
	t.Helper()
	dd := "--data-dir=" + dataDir
	kw(t, "", "admin", "create-org", dd, "--slug", "acme", "--name", "Acme")
	kw(t, "", "admin", "create-org", dd, "--slug", "other", "--name", "Other Co")
	kw(t, adminPassword+"\n", "admin", "create-user", dd, "--org", "acme", "--email", "a@acme.test", "--role", "admin", "--password-stdin")
	kw(t, memberPassword+"\n", "admin", "create-user", dd, "--org", "acme", "--email", "m@acme.test", "--role", "member", "--password-stdin")
	kw(t, "other admin password\n", "admin", "create-user", dd, "--org", "other", "--email", "o@other.test", "--role", "admin", "--password-stdin")
	adminTok = strings.TrimSpace(kw(t, "", "admin", "create-api-token", dd, "--email", "a@acme.test", "--name", "ci"))
	memberTok = strings.TrimSpace(kw(t, "", "admin", "create-api-token", dd, "--email", "m@acme.test", "--name", "ci"))
	otherTok = strings.TrimSpace(kw(t, "", "admin", "create-api-token", dd, "--email", "o@other.test", "--name", "ci"))
	for _, tok := range []string{adminTok, memberTok, otherTok} {
		if !strings.HasPrefix(tok, "kw_") || strings.Contains(tok, "\n") {
			t.Fatalf("create-api-token printed %q, want one kw_ token line", tok)
		}
	}
	return adminTok, memberTok, otherTok
}

func TestAPIAccessRules(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir)
	if !strings.Contains(srv.Out.String(), "/setup/kwsetup_") {
		t.Fatalf("first start did not print a setup link: %q", srv.Out.String())
	}
	adminTok, memberTok, otherTok := seed(t, dir)
	u := srv.URL + "/api/v1/orgs/acme"

	r := do(t, "GET", u, adminTok, nil)
	if r.Status != 200 || !strings.Contains(r.Body, `"role":"admin"`) || !strings.Contains(r.Body, `"slug":"acme"`) {
		t.Fatalf("admin GET org: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", u, "", nil); r.Status != 401 || errCode(t, r) != "unauthenticated" {
		t.Fatalf("no token: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", u, "kw_"+strings.Repeat("a", 52), nil); r.Status != 401 {
		t.Fatalf("unknown token: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", u, memberTok, nil); r.Status != 200 || !strings.Contains(r.Body, `"role":"member"`) {
		t.Fatalf("member GET org: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", u+"/audit", memberTok, nil); r.Status != 403 || errCode(t, r) != "admin_required" {
		t.Fatalf("member on admin route: %d %s", r.Status, r.Body)
	}
	if r := do(t, "POST", u+"/members", memberTok, strings.NewReader(`{"email":"x@acme.test","password":"long enough password"}`)); r.Status != 403 {
		t.Fatalf("member adding a member: %d %s", r.Status, r.Body)
	}
	// Every route of another organization answers 404, like a missing one.
	missing := do(t, "GET", srv.URL+"/api/v1/orgs/nope", otherTok, nil)
	for _, path := range []string{"", "/members", "/audit", "/members/1"} {
		method := "GET"
		if path == "/members/1" {
			method = "DELETE"
		}
		r := do(t, method, u+path, otherTok, nil)
		if r.Status != 404 || r.Body != missing.Body {
			t.Fatalf("%s other org %s: %d %s (missing org: %s)", method, path, r.Status, r.Body, missing.Body)
		}
	}
	// Members join by invitation: the old POST /members adds nobody.
	if r := do(t, "POST", u+"/members", adminTok, strings.NewReader(`{"email":"new@acme.test","role":"member","password":"a new long password"}`)); r.Status != 410 || errCode(t, r) != "use_invitations" {
		t.Fatalf("POST /members: %d %s", r.Status, r.Body)
	}
	if r := do(t, "POST", u+"/invitations", adminTok, strings.NewReader(`{"email": `)); r.Status != 400 || errCode(t, r) != "malformed_request" {
		t.Fatalf("malformed JSON: %d %s", r.Status, r.Body)
	}
	if r := do(t, "POST", u+"/invitations", adminTok, strings.NewReader(`{"email":"x@acme.test","bogus":1}`)); r.Status != 400 {
		t.Fatalf("unknown field: %d %s", r.Status, r.Body)
	}
	big := `{"email":"` + strings.Repeat("a", 2<<20) + `"}`
	if r := do(t, "POST", u+"/invitations", adminTok, strings.NewReader(big)); r.Status != 413 || errCode(t, r) != "body_too_large" {
		t.Fatalf("2 MiB body: %d %.200s", r.Status, r.Body)
	}
	if r := do(t, "POST", u+"/invitations", adminTok, strings.NewReader(`{"email":"not-an-email"}`)); r.Status != 422 || errCode(t, r) != "invalid_email" {
		t.Fatalf("invalid email: %d %s", r.Status, r.Body)
	}
	if r := do(t, "POST", u+"/invitations", adminTok, strings.NewReader(`{"email":"m@acme.test"}`)); r.Status != 409 {
		t.Fatalf("existing member: %d %s", r.Status, r.Body)
	}
	r = do(t, "POST", u+"/invitations", adminTok, strings.NewReader(`{"email":"new@acme.test","role":"member"}`))
	if r.Status != 201 || !strings.Contains(r.Body, "/invite/kwinv_") {
		t.Fatalf("invite: %d %s", r.Status, r.Body)
	}
	var members struct {
		Members []struct {
			User struct {
				ID    int64
				Email string
			} `json:"user"`
		} `json:"members"`
	}
	_ = json.Unmarshal([]byte(do(t, "GET", u+"/members", adminTok, nil).Body), &members)
	var added struct{ User struct{ ID int64 } }
	for _, m := range members.Members {
		if m.User.Email == "m@acme.test" {
			added.User.ID = m.User.ID
		}
	}
	mu := u + "/members/" + itoa(added.User.ID)
	if r := do(t, "PATCH", mu, adminTok, strings.NewReader(`{"role":"owner"}`)); r.Status != 422 {
		t.Fatalf("bad role: %d %s", r.Status, r.Body)
	}
	if r := do(t, "PATCH", mu, adminTok, strings.NewReader(`{"role":"admin"}`)); r.Status != 200 || !strings.Contains(r.Body, `"role":"admin"`) {
		t.Fatalf("promote: %d %s", r.Status, r.Body)
	}
	if r := do(t, "DELETE", mu, adminTok, nil); r.Status != 204 {
		t.Fatalf("remove member: %d %s", r.Status, r.Body)
	}
	if r := do(t, "DELETE", mu, adminTok, nil); r.Status != 404 {
		t.Fatalf("remove again: %d %s", r.Status, r.Body)
	}

	// Personal API tokens: create (shown once), list (never shown), revoke.
	r = do(t, "POST", srv.URL+"/api/v1/user/tokens", adminTok, strings.NewReader(`{"name":"laptop"}`))
	var created struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(r.Body), &created); r.Status != 201 || err != nil || !strings.HasPrefix(created.Token, "kw_") {
		t.Fatalf("create token: %d %s", r.Status, r.Body)
	}
	list := do(t, "GET", srv.URL+"/api/v1/user/tokens", adminTok, nil)
	if list.Status != 200 || strings.Contains(list.Body, created.Token) || !strings.Contains(list.Body, `"laptop"`) {
		t.Fatalf("list tokens: %d %s", list.Status, list.Body)
	}
	if r := do(t, "GET", u, created.Token, nil); r.Status != 200 {
		t.Fatalf("new token unusable: %d", r.Status)
	}
	if r := do(t, "DELETE", srv.URL+"/api/v1/user/tokens/"+itoa(created.ID), memberTok, nil); r.Status != 404 {
		t.Fatalf("revoking someone else's token: %d %s", r.Status, r.Body)
	}
	if r := do(t, "DELETE", srv.URL+"/api/v1/user/tokens/"+itoa(created.ID), adminTok, nil); r.Status != 200 {
		t.Fatalf("revoke token: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", u, created.Token, nil); r.Status != 401 {
		t.Fatalf("revoked token still works: %d", r.Status)
	}

	// The audit log has the security events, newest first, and no secrets.
	a := do(t, "GET", u+"/audit", adminTok, nil)
	for _, want := range []string{"member.add", "member.role", "member.remove", "api_token.create", "api_token.revoke"} {
		if !strings.Contains(a.Body, want) {
			t.Errorf("audit log lacks %s: %s", want, a.Body)
		}
	}
	if out := kw(t, "", "admin", "audit", "--data-dir="+dir, "--org", "acme"); !strings.Contains(out, "api_token.revoke") {
		t.Errorf("admin audit output lacks events: %s", out)
	}

	// Operational endpoints.
	if r := do(t, "GET", srv.URL+"/readyz", "", nil); r.Status != 200 {
		t.Fatalf("readyz: %d %s", r.Status, r.Body)
	}
	m := do(t, "GET", srv.URL+"/metrics", "", nil)
	if m.Status != 200 || !strings.Contains(m.Body, `kitewatch_http_requests_total{method="GET",route="GET /api/v1/orgs/{org}",status="200"}`) {
		t.Fatalf("metrics lack request counts: %.2000s", m.Body)
	}
	if r := do(t, "GET", srv.URL+"/api/v1/nope", adminTok, nil); r.Status != 404 || errCode(t, r) != "not_found" {
		t.Fatalf("unknown API route: %d %s", r.Status, r.Body)
	}
	h := do(t, "GET", srv.URL+"/signin", "", nil).Header
	for _, k := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"} {
		if h.Get(k) == "" {
			t.Errorf("missing security header %s", k)
		}
	}

	// Nothing secret in logs or database files.
	secrets := []string{adminPassword, memberPassword, "a new long password", adminTok, memberTok, otherTok, created.Token}
	assertNoSecrets(t, srv.Logs.String(), dir, secrets)
}

func itoa(n int64) string {
	return strings.TrimSpace(strings.ReplaceAll(string(mustJSON(n)), "\n", ""))
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// assertNoSecrets fails when any secret appears in the logs or in any file of
// the data directory (the database, its WAL and shared-memory files included).
func assertNoSecrets(t *testing.T, logs, dataDir string, secrets []string) {
	t.Helper()
	if logs == "" {
		t.Fatal("no logs captured")
	}
	files := map[string][]byte{"logs": []byte(logs)}
	_ = filepath.WalkDir(dataDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			files[p] = b
		}
		return nil
	})
	if len(files) < 2 {
		t.Fatal("no database files found")
	}
	for name, b := range files {
		for _, s := range secrets {
			if s != "" && bytes.Contains(b, []byte(s)) {
				t.Errorf("secret %.6s… found in plain text in %s", s, name)
			}
		}
	}
}

// waitReady polls /healthz until the server answers (bounded, not a timing assertion).
func waitReady(t *testing.T, base string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("server did not become healthy")
}

var clientNoKeepAlive = &http.Client{Timeout: 10 * time.Second}

func newJSONRequest(url, token, body string) (*http.Request, error) {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}
