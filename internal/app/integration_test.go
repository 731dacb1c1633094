package app_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
	"github.com/kitewatch/kitewatch/internal/cli"
	"github.com/kitewatch/kitewatch/internal/config"
)

// TestBuildkiteAPINeverLeaksTokens drives the whole integration lifecycle
// through the JSON API and then searches every response, the debug logs and
// the database files (WAL included) for each Buildkite token used.
func TestBuildkiteAPINeverLeaksTokens(t *testing.T) {
	sim := bksim.New(bksim.Demo(), bksim.WithRateLimits(100000, 100000))
	hs := httptest.NewServer(sim)
	defer hs.Close()
	defer sim.Close()
	dir := t.TempDir()
	srv := startServer(t, dir, func(c *config.Config) { c.BuildkiteAPIURL = hs.URL })
	adminTok, memberTok, _ := seed(t, dir)
	u := srv.URL + "/api/v1/orgs/acme/integrations/buildkite"
	var bodies []string
	call := func(method, url, tok, body string, want int) resp {
		t.Helper()
		var r resp
		if body == "" {
			r = do(t, method, url, tok, nil)
		} else {
			r = do(t, method, url, tok, strings.NewReader(body))
		}
		bodies = append(bodies, r.Body)
		if r.Status != want {
			t.Fatalf("%s %s: %d %s, want %d", method, url, r.Status, r.Body, want)
		}
		return r
	}
	names := []string{"missing-scopes", "expired", "ip-restricted", "write-scopes", "good", "expiring-soon"}
	tokens := map[string]string{}
	for _, n := range names {
		tokens[n] = bksim.DemoTokenValue(n)
	}
	r := call("GET", u, memberTok, "", 200)
	if !strings.Contains(r.Body, `"status":"not_connected"`) {
		t.Fatalf("initial status: %s", r.Body)
	}
	call("POST", u, memberTok, `{"token":"`+tokens["good"]+`"}`, 403)
	call("POST", u, adminTok, `{"token":""}`, 422)
	r = call("POST", u, adminTok, `{"token":"`+tokens["missing-scopes"]+`"}`, 422)
	for _, want := range []string{`"code":"verification_failed"`, `"code":"missing_scopes"`, "read_build_logs", "read_suites", `"remedy"`} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("missing-scopes answer lacks %s: %s", want, r.Body)
		}
	}
	call("POST", u, adminTok, `{"token":"`+tokens["expired"]+`"}`, 422)
	call("POST", u, adminTok, `{"token":"`+tokens["ip-restricted"]+`"}`, 422)
	r = call("POST", u, adminTok, `{"token":"`+tokens["write-scopes"]+`"}`, 200)
	if !strings.Contains(r.Body, "excess_scopes") {
		t.Errorf("write-scopes connect lacks the least-privilege warning: %s", r.Body)
	}
	call("PUT", u+"/token", adminTok, `{"token":"`+tokens["good"]+`","revoke_previous":true}`, 200)
	r = call("POST", u+"/verify", adminTok, "", 200)
	if !strings.Contains(r.Body, `"status":"connected"`) || !strings.Contains(r.Body, `"last_result":"ok"`) {
		t.Fatalf("verify: %s", r.Body)
	}
	call("PUT", u+"/token", adminTok, `{"token":"`+tokens["expired"]+`"}`, 422)
	call("GET", srv.URL+"/api/v1/orgs/acme/integrations", memberTok, "", 200)
	call("DELETE", u+"?revoke=maybe", adminTok, "", 422)
	r = call("DELETE", u+"?revoke=true", adminTok, "", 200)
	if !strings.Contains(r.Body, `"status":"disconnected"`) {
		t.Fatalf("disconnect: %s", r.Body)
	}
	call("DELETE", u, adminTok, "", 409)
	a := call("GET", srv.URL+"/api/v1/orgs/acme/audit", adminTok, "", 200)
	for _, want := range []string{"buildkite.connect", "buildkite.rotate", "buildkite.verify", "buildkite.disconnect"} {
		if !strings.Contains(a.Body, want) {
			t.Errorf("audit lacks %s", want)
		}
	}
	var secretsUsed []string
	for _, v := range tokens {
		secretsUsed = append(secretsUsed, v)
	}
	assertNoSecrets(t, srv.Logs.String()+"\n"+strings.Join(bodies, "\n"), dir, secretsUsed)
}

// TestBuildkiteCLI drives connect, status, verify, rotate and disconnect
// through the kitewatch CLI against a running server.
func TestBuildkiteCLI(t *testing.T) {
	sim := bksim.New(bksim.Demo(), bksim.WithRateLimits(100000, 100000))
	hs := httptest.NewServer(sim)
	defer hs.Close()
	defer sim.Close()
	dir := t.TempDir()
	srv := startServer(t, dir, func(c *config.Config) { c.BuildkiteAPIURL = hs.URL })
	adminTok, _, _ := seed(t, dir)
	t.Setenv("KITEWATCH_API_TOKEN", adminTok)
	t.Setenv("KITEWATCH_SERVER", srv.URL)
	write := func(name string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(bksim.DemoTokenValue(name)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), []string{"buildkite", "connect", "--org", "acme", "--token-file", write("missing-scopes")},
		strings.NewReader(""), &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "missing_scopes") || !strings.Contains(out.String(), "What to do") {
		t.Fatalf("connect with missing scopes: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	got := kw(t, bksim.DemoTokenValue("good")+"\n", "buildkite", "connect", "--org", "acme", "--token-file", "-")
	if !strings.Contains(got, "Buildkite connected.") || !strings.Contains(got, "✓ granted") || strings.Contains(got, "MISSING") {
		t.Fatalf("connect: %s", got)
	}
	if got := kw(t, "", "buildkite", "status", "--org", "acme"); !strings.Contains(got, "Status:") || !strings.Contains(got, "Connected") {
		t.Fatalf("status: %s", got)
	}
	if got := kw(t, "", "buildkite", "verify", "--org", "acme", "--json"); !strings.Contains(got, `"last_result": "ok"`) {
		t.Fatalf("verify: %s", got)
	}
	if got := kw(t, "", "buildkite", "rotate", "--org", "acme", "--token-file", write("expiring-soon"), "--revoke-previous"); !strings.Contains(got, "Token rotated.") || !strings.Contains(got, "token_expiring_soon") {
		t.Fatalf("rotate: %s", got)
	}
	if got := kw(t, "", "buildkite", "disconnect", "--org", "acme", "--revoke"); !strings.Contains(got, "revoked at Buildkite") {
		t.Fatalf("disconnect: %s", got)
	}
	for _, name := range []string{"missing-scopes", "good", "expiring-soon"} {
		if strings.Contains(srv.Logs.String(), bksim.DemoTokenValue(name)) {
			t.Errorf("token %s in server logs", name)
		}
	}
}

// TestConnectStartsPolling checks that builds appear right after connecting,
// without waiting for the poll interval (an hour here).
func TestConnectStartsPolling(t *testing.T) {
	sim := bksim.New(bksim.Demo(), bksim.WithRateLimits(100000, 100000))
	hs := httptest.NewServer(sim)
	defer hs.Close()
	defer sim.Close()
	dir := t.TempDir()
	srv := startServer(t, dir, func(c *config.Config) { c.BuildkiteAPIURL = hs.URL; c.PollInterval = time.Hour })
	adminTok, _, _ := seed(t, dir)
	// Let the poll that runs at start finish first, so only the poll that
	// connecting starts can bring the builds in.
	for i := 0; !strings.Contains(do(t, "GET", srv.URL+"/metrics", "", nil).Body, `kitewatch_tasks{kind="poll_buildkite",state="completed"}`); i++ {
		if i == 300 {
			t.Fatal("the start-up poll did not run")
		}
		time.Sleep(100 * time.Millisecond)
	}
	u := srv.URL + "/api/v1/orgs/acme/integrations/buildkite"
	if r := do(t, "POST", u, adminTok, strings.NewReader(`{"token":"`+bksim.DemoTokenValue("good")+`"}`)); r.Status != 200 {
		t.Fatalf("connect: %d %s", r.Status, r.Body)
	}
	for i := 0; ; i++ {
		r := do(t, "GET", srv.URL+"/api/v1/orgs/acme/builds", adminTok, nil)
		if r.Status == 200 && strings.Contains(r.Body, `"number"`) {
			return
		}
		if i == 300 {
			t.Fatalf("no builds after connecting: %s", r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
