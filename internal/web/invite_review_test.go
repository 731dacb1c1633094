package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/store"
)

// TestInvitationOfARemovedAdmin: an admin's pending invitations go when the
// admin is removed or demoted, so a link made for another address of theirs
// does not bring them back; the audit event says how many went.
func TestInvitationOfARemovedAdmin(t *testing.T) {
	e := newInviteEnv(t)
	maxID := strconv.FormatInt(e.users["max"].ID, 10)
	adaID := strconv.FormatInt(e.users["ada"].ID, 10)
	if r := e.api("PATCH", "/api/v1/orgs/acme/members/"+maxID, "ada", `{"role":"admin"}`); r.Status != 200 {
		t.Fatalf("promote max: %d %s", r.Status, r.Body)
	}
	_, demoted := e.invite("ada.alt@evil.test", ci.RoleAdmin)
	if r := e.api("PATCH", "/api/v1/orgs/acme/members/"+adaID, "max", `{"role":"member"}`); r.Status != 200 {
		t.Fatalf("demote ada: %d %s", r.Status, r.Body)
	}
	if r := e.api("PATCH", "/api/v1/orgs/acme/members/"+adaID, "max", `{"role":"admin"}`); r.Status != 200 {
		t.Fatalf("promote ada again: %d %s", r.Status, r.Body)
	}
	_, removed := e.invite("ada.alt2@evil.test", ci.RoleAdmin)
	if r := e.api("DELETE", "/api/v1/orgs/acme/members/"+adaID, "max", ""); r.Status != 204 {
		t.Fatalf("remove ada: %d %s", r.Status, r.Body)
	}
	for _, link := range []string{demoted, removed} {
		st, _, body := e.client().do("POST", link, url.Values{"password": {invitePassword}, "password_confirm": {invitePassword}})
		if st != 404 || !strings.Contains(body, invalidLink) {
			t.Fatalf("a removed admin's link: %d %s", st, body)
		}
	}
	for _, email := range []string{"ada.alt@evil.test", "ada.alt2@evil.test"} {
		if _, err := e.db.UserByEmail(context.Background(), email); err == nil {
			t.Fatalf("a removed admin's link created %s", email)
		}
	}
	evs, err := e.db.ListAudit(context.Background(), store.AuditFilter{OrgID: e.acme.ID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, ev := range evs {
		if ev.Action == "member.remove" || ev.Action == "member.role" && ev.Details["role"] == "member" {
			seen[ev.Action] = ev.Details["invitations_revoked"]
		}
	}
	if seen["member.remove"] != "1" || seen["member.role"] != "1" {
		t.Fatalf("audit invitations_revoked = %v, want 1 on the demotion and the removal", seen)
	}
	e.noSecretsLogged()
}

// TestSecretLinkPagesSendOriginOnlyReferrer: the pages whose URL is a
// secret link (invitation, setup, and sign-in, whose ?next= may be an
// invitation link) tell the browser to send only the origin as Referer;
// their form posts still pass the cross-origin protection with a real
// Origin (no-referrer would make old browsers send "Origin: null").
func TestSecretLinkPagesSendOriginOnlyReferrer(t *testing.T) {
	e := newInviteEnv(t)
	_, link := e.invite("ref@example.test", ci.RoleMember)
	for _, path := range []string{link, "/invite/kwinv_unknown", "/setup/kwsetup_unknown", "/signin?next=" + url.QueryEscape(link)} {
		res, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("Referrer-Policy"); got != "strict-origin" {
			t.Fatalf("%s: Referrer-Policy %q (status %d), want strict-origin", path, got, res.StatusCode)
		}
	}
	res, err := http.Get(e.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("Referrer-Policy"); got != "same-origin" {
		t.Fatalf("/healthz: Referrer-Policy %q, want the site-wide same-origin", got)
	}
	// An old browser's form post from the invitation page: Origin is the
	// site's own, no Sec-Fetch-Site. It goes through.
	req, _ := http.NewRequest("POST", e.url+link, strings.NewReader(url.Values{"password": {invitePassword}, "password_confirm": {invitePassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.url)
	res, err = (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || e.member("ref@example.test") != ci.RoleMember {
		t.Fatalf("join with Origin set: %d", res.StatusCode)
	}
}
