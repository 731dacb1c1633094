package web_test

import (
	"net/url"
	"strings"
	"testing"
)

// TestPersonNamesAreBounded checks that a person's name given at setup or
// when joining by invitation is refused with 422 when it is too long or holds
// control characters, and that nothing is created.
func TestPersonNamesAreBounded(t *testing.T) {
	srv := startUIServer(t)
	admin := newFormClient(t, srv.URL)
	setup := func(name string) (int, string) {
		return admin.do("POST", srv.SetupPath, url.Values{"org_name": {"Acme Inc"}, "org_slug": {"acme"}, "email": {adminEmail},
			"name": {name}, "password": {adminPassword}, "password_confirm": {adminPassword}})
	}
	if st, body := setup(strings.Repeat("a", 101)); st != 422 || !strings.Contains(body, "Name must be 1 to 100 characters.") {
		t.Fatalf("setup with a long name: %d %s", st, body)
	}
	if st, body := setup("Ada"); st != 200 {
		t.Fatalf("setup after a refused name: %d %s", st, body)
	}
	csrf := admin.csrf("/orgs/acme/settings/members")
	st, body := admin.do("POST", "/orgs/acme/settings/members", url.Values{"csrf": {csrf}, "email": {"bob@acme.test"}, "role": {"member"}})
	link := inviteLinkRE.FindString(body)
	if st != 201 || link == "" {
		t.Fatalf("invite bob: %d %s", st, body)
	}
	bob := newFormClient(t, srv.URL)
	for _, name := range []string{strings.Repeat("b", 101), "Bob\x00", "Bob\nSmith"} {
		st, body := bob.do("POST", link, url.Values{"name": {name}, "password": {memberPassword}, "password_confirm": {memberPassword}})
		if st != 422 || !strings.Contains(body, "Name must") {
			t.Fatalf("join named %q: %d %s, want 422 and the name rule", name, st, body)
		}
	}
	if st, body := admin.do("GET", "/api/v1/orgs/acme/members", nil); st != 200 || strings.Contains(body, "bob@acme.test") {
		t.Fatalf("a refused member was added: %d %s", st, body)
	}
}
