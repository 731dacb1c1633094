package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestWebhookConfigureAuditedOnce configures the webhook from the page and
// from the JSON API: each action records exactly one audit event, and each
// answer shows the new secret once.
func TestWebhookConfigureAuditedOnce(t *testing.T) {
	srv := startUIServer(t)
	admin := newFormClient(t, srv.URL)
	st, body := admin.do("POST", srv.SetupPath, url.Values{"org_name": {"Acme Inc"}, "org_slug": {"acme"}, "email": {adminEmail},
		"name": {"Ada"}, "password": {adminPassword}, "password_confirm": {adminPassword}})
	if st != 200 {
		t.Fatalf("setup: %d %s", st, body)
	}
	api := func(method, path, in string, out any) int {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		if in != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := admin.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, res.StatusCode, b, err)
		}
		return res.StatusCode
	}
	configured := func() int {
		t.Helper()
		var audit struct {
			Events []struct {
				Action  string            `json:"action"`
				Details map[string]string `json:"details"`
			} `json:"events"`
		}
		if st := api("GET", "/api/v1/orgs/acme/audit?action=buildkite.webhook.configure", "", &audit); st != 200 {
			t.Fatalf("audit: %d", st)
		}
		return len(audit.Events)
	}

	csrf := admin.csrf("/orgs/acme")
	st, body = admin.do("POST", bkPage+"/webhook", url.Values{"csrf": {csrf}, "mode": {"signature"}})
	if st != 201 || !strings.Contains(body, "Webhook endpoint created") || !strings.Contains(body, "kwwhs") {
		t.Fatalf("configure from the page: %d %s", st, body)
	}
	if n := configured(); n != 1 {
		t.Fatalf("after the page: %d configure events, want 1", n)
	}

	var setup struct {
		URL, Token, Mode string
	}
	if st := api("POST", "/api/v1/orgs/acme/integrations/buildkite/webhook", `{"mode":"token"}`, &setup); st != 201 ||
		setup.Mode != "token" || !strings.HasPrefix(setup.Token, "kwwhs") {
		t.Fatalf("configure from the API: %d %+v", st, setup)
	}
	if n := configured(); n != 2 {
		t.Fatalf("after the API: %d configure events, want 2", n)
	}

	// The page now says the endpoint is replaced; the status never holds the
	// secret.
	st, body = admin.do("POST", bkPage+"/webhook", url.Values{"csrf": {csrf}})
	if st != 201 || !strings.Contains(body, "Webhook endpoint replaced") {
		t.Fatalf("rotate from the page: %d %s", st, body)
	}
	if n := configured(); n != 3 {
		t.Fatalf("after the rotation: %d configure events, want 3", n)
	}
	var status map[string]any
	if st := api("GET", "/api/v1/orgs/acme/integrations/buildkite/webhook", "", &status); st != 200 ||
		status["configured"] != true || status["mode"] != "signature" {
		t.Fatalf("webhook status: %d %v", st, status)
	}
	if _, ok := status["token"]; ok {
		t.Fatalf("webhook status holds the secret: %v", status)
	}
}
