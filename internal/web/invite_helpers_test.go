package web_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Members join by invitation: these helpers let the walks through the UI
// add a member the way an admin and the invitee would.

var inviteLinkRE = regexp.MustCompile(`/invite/kwinv_[a-z2-7]+`)

// inviteLink creates an invitation on the Members page, as the admin
// signed in to b, and returns the path of the link it shows once.
func (b *browser) inviteLink(email, role string) string {
	b.t.Helper()
	b.open("/orgs/acme/settings/members")
	b.typeInto("#m-email", email)
	b.toggle("form[action$='/settings/members'] input[name=role][value=" + role + "]")
	b.click("form[action$='/settings/members'] button[type=submit]")
	b.says("Invitation for "+email+" created", "Copy the link now")
	link := inviteLinkRE.FindString(eval[string](b, `document.querySelector("#new-invite").value`))
	if link == "" {
		b.t.Fatal("no invitation link on the page")
	}
	return link
}

// joinByInvitation opens an invitation link in b (nobody signed in) and
// creates the invitee's account; the invitee ends up signed in.
func (b *browser) joinByInvitation(link, name, password string) {
	b.t.Helper()
	b.open(link)
	b.says("Join Acme Inc", "choose your own password")
	b.typeInto("#i-name", name)
	b.typeInto("#i-password", password)
	b.typeInto("#i-password-confirm", password)
	b.click("form button[type=submit]")
	b.says("Welcome to kitewatch: you joined Acme Inc")
}

// joinByForm invites email as the admin signed in to admin and creates the
// invitee's account with invitee, both without JavaScript; invitee ends up
// signed in.
func joinByForm(t *testing.T, admin, invitee *formClient, email, name, password string) {
	t.Helper()
	csrf := admin.csrf("/orgs/acme/settings/members")
	st, body := admin.do("POST", "/orgs/acme/settings/members", url.Values{"csrf": {csrf}, "email": {email}, "role": {"member"}})
	link := inviteLinkRE.FindString(body)
	if st != 201 || link == "" {
		t.Fatalf("invite %s: %d %s", email, st, body)
	}
	st, body = invitee.do("POST", link, url.Values{"name": {name}, "password": {password}, "password_confirm": {password}})
	if st != 200 || !strings.Contains(body, "Welcome to kitewatch: you joined Acme Inc as a member.") {
		t.Fatalf("join as %s: %d %s", email, st, body)
	}
}
