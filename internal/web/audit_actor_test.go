package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestWebhookConfigureAuditNamesActor checks that configuring the webhook
// records who did it (actor id, like every other admin action) and the mode
// actually set, also when the request left it to the default.
func TestWebhookConfigureAuditNamesActor(t *testing.T) {
	srv := startUIServer(t)
	admin := newFormClient(t, srv.URL)
	if st, body := admin.do("POST", srv.SetupPath, url.Values{"org_name": {"Acme Inc"}, "org_slug": {"acme"}, "email": {adminEmail},
		"name": {"Ada"}, "password": {adminPassword}, "password_confirm": {adminPassword}}); st != 200 {
		t.Fatalf("setup: %d %s", st, body)
	}
	call := func(method, path string, out any) int {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		res, err := admin.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %d: %v", method, path, res.StatusCode, err)
		}
		return res.StatusCode
	}
	var me struct {
		User struct {
			ID int64 `json:"id"`
		} `json:"user"`
	}
	if st := call("GET", "/api/v1/user", &me); st != 200 || me.User.ID == 0 {
		t.Fatalf("user: %d %+v", st, me)
	}
	var setup map[string]any
	if st := call("POST", "/api/v1/orgs/acme/integrations/buildkite/webhook", &setup); st != 201 {
		t.Fatalf("configure: %d %v", st, setup)
	}
	var audit struct {
		Events []struct {
			ActorID *int64            `json:"actor_id"`
			Details map[string]string `json:"details"`
		} `json:"events"`
	}
	if st := call("GET", "/api/v1/orgs/acme/audit?action=buildkite.webhook.configure", &audit); st != 200 || len(audit.Events) != 1 {
		t.Fatalf("audit: %d %+v", st, audit)
	}
	ev := audit.Events[0]
	if ev.ActorID == nil || *ev.ActorID != me.User.ID || ev.Details["mode"] != "signature" {
		t.Fatalf("configure event = actor %v, details %v; want actor %d, mode signature", ev.ActorID, ev.Details, me.User.ID)
	}
}
