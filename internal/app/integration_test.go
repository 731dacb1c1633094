package app_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
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
