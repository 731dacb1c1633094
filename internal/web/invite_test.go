package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/auth"
	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/store/sqlite"
)

const invitePassword = "invite test password 1"

// lockedBuffer is a goroutine-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// testClock is a settable clock for expiry.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// inviteEnv is a whole HTTP server (with its middleware and access log) on
// a fresh database: acme with admin ada and member max, globex with admin
// gus and member eve. Each has an API token.
type inviteEnv struct {
	t      *testing.T
	db     *store.DB
	clock  *testClock
	logs   *lockedBuffer
	url    string
	acme   ci.Org
	globex ci.Org
	users  map[string]ci.User
	tokens map[string]string // API tokens by user name
	// secrets are invitation tokens handed out; the log must not hold them.
	secrets []string
}

func newInviteEnv(t *testing.T) *inviteEnv {
	t.Helper()
	ctx := context.Background()
	clock := &testClock{t: time.Now().UTC()}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), sqlite.FileName), store.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	s := New(Options{DB: db, Logger: slog.New(slog.NewTextHandler(logs, nil)), PublicURL: "http://kitewatch.test"})
	h, err := s.Handler()
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	e := &inviteEnv{t: t, db: db, clock: clock, logs: logs, url: ts.URL, users: map[string]ci.User{}, tokens: map[string]string{}}
	if e.acme, err = db.CreateOrg(ctx, "acme", "Acme Inc"); err != nil {
		t.Fatal(err)
	}
	if e.globex, err = db.CreateOrg(ctx, "globex", "Globex"); err != nil {
		t.Fatal(err)
	}
	hash, err := auth.HashPassword(invitePassword)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		name string
		org  ci.Org
		role ci.Role
	}{{"ada", e.acme, ci.RoleAdmin}, {"max", e.acme, ci.RoleMember}, {"gus", e.globex, ci.RoleAdmin}, {"eve", e.globex, ci.RoleMember}} {
		user, err := db.CreateUser(ctx, u.name+"@"+u.org.Slug+".test", strings.ToUpper(u.name[:1])+u.name[1:], hash)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.AddMember(ctx, u.org.ID, user.ID, u.role); err != nil {
			t.Fatal(err)
		}
		plain, th, err := auth.NewToken(auth.PrefixAPIToken)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateAPIToken(ctx, ci.APIToken{UserID: user.ID, Name: "test", Hint: auth.TokenHint(plain), TokenHash: th}); err != nil {
			t.Fatal(err)
		}
		e.users[u.name], e.tokens[u.name] = user, plain
	}
	return e
}

type apiResp struct {
	Status int
	Body   string
}

// api calls the JSON API as user (by name; "" for none).
func (e *inviteEnv) api(method, path, user, body string) apiResp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+e.tokens[user])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return apiResp{res.StatusCode, string(b)}
}

// invite creates an invitation through the API as ada and returns its
// id and link path.
func (e *inviteEnv) invite(email string, role ci.Role) (id int64, path string) {
	e.t.Helper()
	r := e.api("POST", "/api/v1/orgs/acme/invitations", "ada", `{"email":"`+email+`","role":"`+string(role)+`"}`)
	var out createdInvitation
	if err := json.Unmarshal([]byte(r.Body), &out); r.Status != 201 || err != nil {
		e.t.Fatalf("invite %s: %d %s", email, r.Status, r.Body)
	}
	u, err := url.Parse(out.URL)
	if err != nil || u.Host != "kitewatch.test" || !strings.HasPrefix(u.Path, "/invite/kwinv_") {
		e.t.Fatalf("invitation link %q", out.URL)
	}
	e.secrets = append(e.secrets, strings.TrimPrefix(u.Path, "/invite/"))
	return out.Invitation.ID, u.Path
}

// client is a cookie-keeping browser without JavaScript; it does not follow
// redirects, so tests see them.
type client struct {
	e *inviteEnv
	c *http.Client
}

func (e *inviteEnv) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(method, path string, form url.Values) (status int, location, body string) {
	c.e.t.Helper()
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.e.url+path, rd)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := c.c.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Location"), string(b)
}

func (c *client) signIn(email string) {
	c.e.t.Helper()
	if st, loc, body := c.do("POST", "/signin", url.Values{"email": {email}, "password": {invitePassword}}); st != 303 || loc != "/" {
		c.e.t.Fatalf("sign in %s: %d %s %s", email, st, loc, body)
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *client) csrf(path string) string {
	c.e.t.Helper()
	_, _, body := c.do("GET", path, nil)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		c.e.t.Fatalf("no CSRF field on %s: %s", path, body)
	}
	return m[1]
}

// member reports the role of email in acme, or "".
func (e *inviteEnv) member(email string) ci.Role {
	e.t.Helper()
	u, err := e.db.UserByEmail(context.Background(), email)
	if err != nil {
		return ""
	}
	m, err := e.db.Membership(context.Background(), e.acme.ID, u.ID)
	if err != nil {
		return ""
	}
	return m.Role
}

func (e *inviteEnv) auditActions() []string {
	e.t.Helper()
	evs, err := e.db.ListAudit(context.Background(), store.AuditFilter{OrgID: e.acme.ID, Limit: 500})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		for _, s := range e.secrets {
			if strings.Contains(ev.Target+ev.Actor+strings.Join(mapValues(ev.Details), " "), s) {
				e.t.Fatalf("audit event %s holds an invitation link", ev.Action)
			}
		}
		out = append(out, ev.Action)
	}
	return out
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// noSecretsLogged fails when the server log holds an invitation secret;
// it also checks that requests were logged at all.
func (e *inviteEnv) noSecretsLogged() {
	e.t.Helper()
	logs := e.logs.String()
	if !strings.Contains(logs, "/invite/[REDACTED]") && !strings.Contains(logs, "/invitations") {
		e.t.Fatalf("no invitation requests in the access log:\n%s", logs)
	}
	for _, s := range e.secrets {
		if strings.Contains(logs, s) || strings.Contains(logs, s[len(invitePrefix)+1:]) {
			t := e.t
			t.Fatalf("an invitation link is in the server log")
		}
	}
}

const invalidLink = "This invitation link is not valid any more"

// TestInvitationAPI walks the API: admins only, validation, identical
// answers whether or not the email has an account, the link only in the
// creation response, revoke per organization, and the old members POST.
func TestInvitationAPI(t *testing.T) {
	e := newInviteEnv(t)
	// Non-admins and other organizations.
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/v1/orgs/acme/invitations", `{"email":"new@x.test"}`},
		{"GET", "/api/v1/orgs/acme/invitations", ""},
		{"DELETE", "/api/v1/orgs/acme/invitations/1", ""},
		{"POST", "/api/v1/orgs/acme/members", `{"email":"new@x.test","password":"a long enough password"}`},
	} {
		if r := e.api(c.method, c.path, "max", c.body); r.Status != 403 || !strings.Contains(r.Body, "admin_required") {
			t.Fatalf("member %s %s: %d %s", c.method, c.path, r.Status, r.Body)
		}
		if r := e.api(c.method, c.path, "gus", c.body); r.Status != 404 {
			t.Fatalf("other organization's admin %s %s: %d %s", c.method, c.path, r.Status, r.Body)
		}
	}
	if l, _ := e.db.ListInvitations(context.Background(), e.acme.ID); len(l) != 0 {
		t.Fatalf("a refused request created invitations: %+v", l)
	}
	// The old endpoint refuses clearly and creates nothing.
	r := e.api("POST", "/api/v1/orgs/acme/members", "ada", `{"email":"new@x.test","role":"member","password":"a long enough password"}`)
	if r.Status != 410 || !strings.Contains(r.Body, `"use_invitations"`) || !strings.Contains(r.Body, "/api/v1/orgs/acme/invitations") {
		t.Fatalf("POST /members: %d %s", r.Status, r.Body)
	}
	if e.member("new@x.test") != "" {
		t.Fatal("POST /members still adds members")
	}
	if r := e.api("POST", "/api/v1/orgs/acme/members", "ada", `{"email":"eve@globex.test"}`); r.Status != 410 || e.member("eve@globex.test") != "" {
		t.Fatalf("POST /members with an existing account: %d %s", r.Status, r.Body)
	}
	// Validation.
	for _, c := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"email":"not-an-email"}`, 422, "invalid_email"},
		{`{"email":"a@b.test","role":"owner"}`, 422, "invalid_role"},
		{`{"email":"a@b.test","password":"x"}`, 400, "malformed_request"},
		{`{"email":`, 400, "malformed_request"},
		{`{"email":"max@acme.test"}`, 409, "already_member"},
	} {
		if r := e.api("POST", "/api/v1/orgs/acme/invitations", "ada", c.body); r.Status != c.status || !strings.Contains(r.Body, `"`+c.code+`"`) {
			t.Fatalf("invite %s: %d %s, want %d %s", c.body, r.Status, r.Body, c.status, c.code)
		}
	}
	// Existing account (eve, of globex) or none: the same answer.
	shape := func(body string) (string, string) {
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatal(err)
		}
		inv := m["invitation"].(map[string]any)
		email := inv["email"].(string)
		link := m["url"].(string)
		for _, k := range []string{"id", "email", "created_at", "expires_at"} {
			inv[k] = "x"
		}
		m["url"] = "x"
		b, _ := json.Marshal(m)
		return string(b), email + " " + link
	}
	existing := e.api("POST", "/api/v1/orgs/acme/invitations", "ada", `{"email":"eve@globex.test","role":"member"}`)
	fresh := e.api("POST", "/api/v1/orgs/acme/invitations", "ada", `{"email":"nobody@nowhere.test","role":"member"}`)
	es, _ := shape(existing.Body)
	fs, _ := shape(fresh.Body)
	if existing.Status != 201 || fresh.Status != 201 || es != fs {
		t.Fatalf("answers differ for an existing account and a new email:\n%d %s\n%d %s", existing.Status, existing.Body, fresh.Status, fresh.Body)
	}
	if e.member("eve@globex.test") != "" {
		t.Fatal("inviting an existing account added it without its consent")
	}
	var created createdInvitation
	_ = json.Unmarshal([]byte(existing.Body), &created)
	secret := strings.TrimPrefix(created.URL, "http://kitewatch.test/invite/")
	e.secrets = append(e.secrets, secret)
	if !auth.LooksLikeToken(invitePrefix, secret) || strings.Contains(existing.Body, "token_hash") {
		t.Fatalf("creation response: %s", existing.Body)
	}
	// The list never shows links; it says who invited and when it expires.
	list := e.api("GET", "/api/v1/orgs/acme/invitations", "ada", "")
	if list.Status != 200 || strings.Contains(list.Body, "kwinv_") || strings.Contains(list.Body, secret) ||
		!strings.Contains(list.Body, `"invited_by_email":"ada@acme.test"`) || strings.Count(list.Body, `"email"`) != 2 {
		t.Fatalf("list: %d %s", list.Status, list.Body)
	}
	if !strings.Contains(list.Body, created.Invitation.ExpiresAt.Format(time.RFC3339)[:10]) ||
		created.Invitation.ExpiresAt.Sub(created.Invitation.CreatedAt) != inviteTTL {
		t.Fatalf("invitation does not expire in 7 days: %+v", created.Invitation)
	}
	// Another organization's admin cannot revoke acme's invitation, even
	// through their own organization's path.
	idPath := "/invitations/" + strconv.FormatInt(created.Invitation.ID, 10)
	if r := e.api("DELETE", "/api/v1/orgs/globex"+idPath, "gus", ""); r.Status != 404 {
		t.Fatalf("revoke through another organization: %d %s", r.Status, r.Body)
	}
	if r := e.api("DELETE", "/api/v1/orgs/acme/invitations/x", "ada", ""); r.Status != 404 {
		t.Fatalf("revoke a bad id: %d %s", r.Status, r.Body)
	}
	if r := e.api("DELETE", "/api/v1/orgs/acme"+idPath, "ada", ""); r.Status != 204 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if r := e.api("DELETE", "/api/v1/orgs/acme"+idPath, "ada", ""); r.Status != 404 {
		t.Fatalf("revoke twice: %d %s", r.Status, r.Body)
	}
	if st, _, body := e.client().do("GET", "/invite/"+secret, nil); st != 404 || !strings.Contains(body, invalidLink) {
		t.Fatalf("revoked link: %d %s", st, body)
	}
	got := strings.Join(e.auditActions(), ",") + ","
	if strings.Count(got, "member.invite,") != 2 || !strings.Contains(got, "member.invite_revoke") || strings.Contains(got, "member.add") {
		t.Fatalf("audit: %s", got)
	}
	e.noSecretsLogged()
}

// TestInvitationNewAccount: a person without an account opens the link,
// chooses a password, and is signed in as a member; the link then dies.
func TestInvitationNewAccount(t *testing.T) {
	e := newInviteEnv(t)
	_, link := e.invite("New.Person@Example.test", ci.RoleAdmin)
	c := e.client()
	st, _, body := c.do("GET", link, nil)
	if st != 200 || !strings.Contains(body, "Join Acme Inc as an admin") || !strings.Contains(body, "new.person@example.test") ||
		!strings.Contains(body, `name="password_confirm"`) {
		t.Fatalf("invitation page: %d %s", st, body)
	}
	for _, bad := range []struct {
		form url.Values
		says string
	}{
		{url.Values{"name": {"New"}, "password": {invitePassword}, "password_confirm": {invitePassword + "x"}}, "The two passwords do not match."},
		{url.Values{"name": {"New"}, "password": {"short"}, "password_confirm": {"short"}}, "12"},
		{url.Values{"name": {"New\x00"}, "password": {invitePassword}, "password_confirm": {invitePassword}}, "Name must not contain control characters."},
	} {
		st, _, body := c.do("POST", link, bad.form)
		if st != 422 || !strings.Contains(body, bad.says) || strings.Contains(body, invitePassword) {
			t.Fatalf("bad form %v: %d %s", bad.form, st, body)
		}
		if _, err := e.db.UserByEmail(context.Background(), "new.person@example.test"); err == nil {
			t.Fatal("a refused form created the account")
		}
	}
	st, loc, body := c.do("POST", link, url.Values{"name": {"New Person"}, "password": {invitePassword}, "password_confirm": {invitePassword}})
	if st != 303 || loc != "/orgs/acme" {
		t.Fatalf("create account: %d %s %s", st, loc, body)
	}
	if _, _, body := c.do("GET", "/orgs/acme", nil); !strings.Contains(body, "you joined Acme Inc as an admin") {
		t.Fatalf("not signed in after joining: %s", body)
	}
	if e.member("new.person@example.test") != ci.RoleAdmin {
		t.Fatal("no membership after joining")
	}
	u, _ := e.db.UserByEmail(context.Background(), "new.person@example.test")
	if ok, _ := auth.CheckPassword(u.PasswordHash, invitePassword); !ok || u.Name != "New Person" {
		t.Fatalf("account = %+v", u)
	}
	// Used: the link is dead, for anyone, and a second submission changes nothing.
	for _, cl := range []*client{c, e.client()} {
		if st, _, body := cl.do("GET", link, nil); st != 404 || !strings.Contains(body, invalidLink) {
			t.Fatalf("used link: %d %s", st, body)
		}
	}
	if st, _, _ := e.client().do("POST", link, url.Values{"password": {invitePassword + "2"}, "password_confirm": {invitePassword + "2"}}); st != 404 {
		t.Fatalf("reused link POST: %d", st)
	}
	if u2, _ := e.db.UserByEmail(context.Background(), "new.person@example.test"); u2.PasswordHash != u.PasswordHash {
		t.Fatal("a reused link changed the password")
	}
	if got := strings.Join(e.auditActions(), ","); !strings.HasPrefix(got, "member.join,member.invite") {
		t.Fatalf("audit: %s", got)
	}
	e.noSecretsLogged()
}

// TestInvitationExistingAccount: the invitee has an account (in another
// organization): sign in through the page's link, then accept with the
// session's CSRF token.
func TestInvitationExistingAccount(t *testing.T) {
	e := newInviteEnv(t)
	_, link := e.invite("eve@globex.test", ci.RoleMember)
	c := e.client()
	st, _, body := c.do("GET", link, nil)
	signin := "/signin?next=" + url.QueryEscape(link)
	if st != 200 || !strings.Contains(body, "Sign in to accept") || !strings.Contains(body, `href="`+strings.ReplaceAll(signin, "%", "%")) ||
		strings.Contains(body, `name="password"`) {
		t.Fatalf("invitation page for an existing account: %d %s", st, body)
	}
	// Posting the new-account form anyway cannot take over the account.
	st, _, body = c.do("POST", link, url.Values{"password": {"attacker password 123"}, "password_confirm": {"attacker password 123"}})
	if st != 409 || !strings.Contains(body, "An account with this email exists already") {
		t.Fatalf("new-account form for an existing email: %d %s", st, body)
	}
	if _, _, body := c.do("GET", signin, nil); !strings.Contains(body, `name="next" value="`+link+`"`) {
		t.Fatalf("sign-in page does not come back to the invitation: %s", body)
	}
	if st, loc, _ := c.do("POST", "/signin", url.Values{"email": {"eve@globex.test"}, "password": {invitePassword}, "next": {link}}); st != 303 || loc != link {
		t.Fatalf("sign-in: %d %s", st, loc)
	}
	st, _, body = c.do("GET", link, nil)
	if st != 200 || !strings.Contains(body, "Accept and join Acme Inc") {
		t.Fatalf("accept page: %d %s", st, body)
	}
	// Without the CSRF token: refused, nothing changes.
	if st, _, _ := c.do("POST", link, url.Values{}); st != 403 || e.member("eve@globex.test") != "" {
		t.Fatalf("accept without CSRF: %d", st)
	}
	st, loc, _ := c.do("POST", link, url.Values{"csrf": {c.csrf(link)}})
	if st != 303 || loc != "/orgs/acme" || e.member("eve@globex.test") != ci.RoleMember {
		t.Fatalf("accept: %d %s", st, loc)
	}
	if _, _, body := c.do("GET", "/orgs/acme", nil); !strings.Contains(body, "You joined Acme Inc as a member.") {
		t.Fatalf("after accepting: %s", body)
	}
	if st, _, body := c.do("GET", link, nil); st != 404 || !strings.Contains(body, invalidLink) {
		t.Fatalf("accepted link: %d %s", st, body)
	}
	e.noSecretsLogged()
}

// TestInvitationWrongUser: someone signed in as another account sees whom
// the invitation is for, and cannot accept it.
func TestInvitationWrongUser(t *testing.T) {
	e := newInviteEnv(t)
	_, link := e.invite("eve@globex.test", ci.RoleAdmin)
	c := e.client()
	c.signIn("gus@globex.test")
	st, _, body := c.do("GET", link, nil)
	want := "This invitation is for e…@globex.test; you are signed in as gus@globex.test. Nothing was changed."
	if st != 403 || !strings.Contains(body, want) || strings.Contains(body, "eve@globex.test") || strings.Contains(body, "Accept and join") {
		t.Fatalf("wrong user's page: %d %s", st, body)
	}
	csrf := c.csrf(link)
	if st, _, body := c.do("POST", link, url.Values{"csrf": {csrf}}); st != 403 || !strings.Contains(body, want) {
		t.Fatalf("wrong user's accept: %d %s", st, body)
	}
	if e.member("gus@globex.test") != "" || e.member("eve@globex.test") != "" {
		t.Fatal("a wrong user's accept added someone")
	}
	evs, _ := e.db.ListAudit(context.Background(), store.AuditFilter{OrgID: e.acme.ID, Action: "member.join"})
	if len(evs) != 1 || evs[0].Outcome != ci.OutcomeFailure || evs[0].Actor != "gus@globex.test" {
		t.Fatalf("wrong user's accept audit: %+v", evs)
	}
	// The invitation still works for its invitee.
	eve := e.client()
	eve.signIn("eve@globex.test")
	if st, _, _ := eve.do("POST", link, url.Values{"csrf": {eve.csrf(link)}}); st != 303 || e.member("eve@globex.test") != ci.RoleAdmin {
		t.Fatalf("invitee accept after a wrong user's try: %d", st)
	}
	e.noSecretsLogged()
}

// TestInvitationInvalidLinks: unknown, malformed, expired, used, revoked and
// replaced links all get the same page, and change nothing.
func TestInvitationInvalidLinks(t *testing.T) {
	e := newInviteEnv(t)
	unknownTok, _, _ := auth.NewToken(invitePrefix)
	links := map[string]string{"unknown": "/invite/" + unknownTok, "malformed": "/invite/kwinv_nope", "setup-shaped": "/invite/" + strings.Replace(unknownTok, "kwinv", "kwsetup", 1)}
	_, links["expired"] = e.invite("x1@example.test", ci.RoleMember)
	_, used := e.invite("x2@example.test", ci.RoleMember)
	links["used"] = used
	revokeID, revoked := e.invite("x3@example.test", ci.RoleMember)
	links["revoked"] = revoked
	_, links["replaced"] = e.invite("x4@example.test", ci.RoleMember)
	_, replacement := e.invite("x4@example.test", ci.RoleAdmin)
	if st, _, _ := e.client().do("POST", used, url.Values{"password": {invitePassword}, "password_confirm": {invitePassword}}); st != 303 {
		t.Fatalf("use: %d", st)
	}
	if r := e.api("DELETE", "/api/v1/orgs/acme/invitations/"+strconv.FormatInt(revokeID, 10), "ada", ""); r.Status != 204 {
		t.Fatalf("revoke: %d", r.Status)
	}
	e.clock.Add(inviteTTL + time.Minute)
	_, fresh := e.invite("x5@example.test", ci.RoleMember) // valid, to show the others fail for their own reason
	var first string
	for name, link := range links {
		for _, method := range []string{"GET", "POST"} {
			st, _, body := e.client().do(method, link, url.Values{"name": {"X"}, "password": {invitePassword}, "password_confirm": {invitePassword}})
			if st != 404 || !strings.Contains(body, invalidLink) || !strings.Contains(body, "Ask an admin of the organization for a new one.") {
				t.Fatalf("%s link %s: %d %s", name, method, st, body)
			}
			if first == "" {
				first = body
			} else if body != first {
				t.Fatalf("%s link %s answers differently:\n%s\nfirst:\n%s", name, method, body, first)
			}
		}
	}
	for _, email := range []string{"x1@example.test", "x3@example.test", "x4@example.test"} {
		if _, err := e.db.UserByEmail(context.Background(), email); err == nil {
			t.Fatalf("an invalid link created %s", email)
		}
	}
	_ = replacement // expired with the others; the fresh one still works:
	if st, _, _ := e.client().do("GET", fresh, nil); st != 200 {
		t.Fatalf("fresh link: %d", st)
	}
	e.noSecretsLogged()
}

// TestInvitationThrottle: a client IP that keeps trying links that do not
// work is slowed down like failed sign-ins.
func TestInvitationThrottle(t *testing.T) {
	e := newInviteEnv(t)
	c := e.client()
	for i := range auth.DefaultLimiterConfig().IPThreshold {
		tok, _, _ := auth.NewToken(invitePrefix)
		if st, _, _ := c.do("GET", "/invite/"+tok, nil); st != 404 {
			t.Fatalf("attempt %d: %d", i, st)
		}
	}
	_, link := e.invite("late@example.test", ci.RoleMember)
	st, _, body := c.do("GET", link, nil)
	if st != 429 || !strings.Contains(body, "Too many attempts") {
		t.Fatalf("after many bad links: %d %s", st, body)
	}
}

// TestInvitationAcceptRace: two concurrent submissions of the same link
// give exactly one account and one membership.
func TestInvitationAcceptRace(t *testing.T) {
	e := newInviteEnv(t)
	_, link := e.invite("racer@example.test", ci.RoleMember)
	const n = 4
	statuses := make(chan int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			pw := invitePassword + strconv.Itoa(i)
			st, _, _ := e.client().do("POST", link, url.Values{"password": {pw}, "password_confirm": {pw}})
			statuses <- st
		}()
	}
	close(start)
	wg.Wait()
	close(statuses)
	ok := 0
	for st := range statuses {
		switch st {
		case 303:
			ok++
		case 404:
		default:
			t.Fatalf("concurrent accept answered %d", st)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent accepts succeeded, want 1", ok)
	}
	ms, _ := e.db.ListMembers(context.Background(), e.acme.ID)
	if len(ms) != 3 || e.member("racer@example.test") != ci.RoleMember {
		t.Fatalf("members after the race: %+v", ms)
	}
	// The same for two sessions of one existing account accepting at once.
	_, link = e.invite("eve@globex.test", ci.RoleMember)
	type sess struct {
		c    *client
		csrf string
	}
	var ss []sess
	for range n {
		c := e.client()
		c.signIn("eve@globex.test")
		ss = append(ss, sess{c, c.csrf(link)})
	}
	statuses = make(chan int, n)
	start = make(chan struct{})
	for _, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			st, _, _ := s.c.do("POST", link, url.Values{"csrf": {s.csrf}})
			statuses <- st
		}()
	}
	close(start)
	wg.Wait()
	close(statuses)
	ok = 0
	for st := range statuses {
		if st == 303 {
			ok++
		} else if st != 404 {
			t.Fatalf("concurrent accept answered %d", st)
		}
	}
	joins := strings.Count(strings.Join(e.auditActions(), ","), "member.join")
	if ok != 1 || joins != 2 || e.member("eve@globex.test") != ci.RoleMember {
		t.Fatalf("%d concurrent accepts succeeded, %d joins audited; want 1 and 2", ok, joins)
	}
}

// TestInvitationMembersPage: admins invite from the Members page, see the
// link once and the pending list, and revoke; members cannot.
func TestInvitationMembersPage(t *testing.T) {
	e := newInviteEnv(t)
	ada := e.client()
	ada.signIn("ada@acme.test")
	csrf := ada.csrf("/orgs/acme/settings/members")
	// Existing account or not: the same page, apart from the email and link.
	pages := map[string]string{}
	for _, email := range []string{"eve@globex.test", "someone@nowhere.test"} {
		st, _, body := ada.do("POST", "/orgs/acme/settings/members", url.Values{"csrf": {csrf}, "email": {email}, "role": {"member"}})
		m := regexp.MustCompile(`value="http://kitewatch.test/invite/(kwinv_[a-z2-7]+)"`).FindStringSubmatch(body)
		if st != 201 || m == nil || !strings.Contains(body, "Copy the link now and send it to "+email+" privately") {
			t.Fatalf("invite %s: %d %s", email, st, body)
		}
		e.secrets = append(e.secrets, m[1])
		norm := strings.ReplaceAll(strings.ReplaceAll(body, m[1], "TOKEN"), email, "EMAIL")
		// The pending list differs by the other invitation: cut it out.
		pages[email] = regexp.MustCompile(`(?s)<h2 id="pending-title">.*?</section>`).ReplaceAllString(norm, "")
	}
	if pages["eve@globex.test"] != pages["someone@nowhere.test"] {
		t.Fatalf("the members page answers differently for an existing account:\n%s\n---\n%s", pages["eve@globex.test"], pages["someone@nowhere.test"])
	}
	st, _, body := ada.do("GET", "/orgs/acme/settings/members", nil)
	if st != 200 || !strings.Contains(body, "Pending invitations") || !strings.Contains(body, "someone@nowhere.test") ||
		!strings.Contains(body, "ada@acme.test") || strings.Contains(body, "kwinv_") {
		t.Fatalf("members page after inviting: %d %s", st, body)
	}
	for _, c := range []struct {
		form url.Values
		says string
	}{
		{url.Values{"csrf": {csrf}, "email": {"max@acme.test"}, "role": {"member"}}, "max@acme.test is already a member."},
		{url.Values{"csrf": {csrf}, "email": {"nope"}, "role": {"member"}}, "Enter a valid email address"},
		{url.Values{"csrf": {csrf}, "email": {"a@b.test"}, "role": {"owner"}}, "Role must be admin or member."},
	} {
		if st, _, body := ada.do("POST", "/orgs/acme/settings/members", c.form); st != 422 || !strings.Contains(body, c.says) || strings.Contains(body, "kwinv_") {
			t.Fatalf("invite %v: %d %s", c.form, st, body)
		}
	}
	invs, _ := e.db.ListInvitations(context.Background(), e.acme.ID)
	if len(invs) != 2 {
		t.Fatalf("invitations: %+v", invs)
	}
	revoke := "/orgs/acme/settings/invitations/" + strconv.FormatInt(invs[0].ID, 10) + "/revoke"
	// A member sees neither the list nor the form, and cannot revoke or invite.
	max := e.client()
	max.signIn("max@acme.test")
	if _, _, body := max.do("GET", "/orgs/acme/settings/members", nil); strings.Contains(body, "Pending invitations") || strings.Contains(body, "someone@nowhere.test") {
		t.Fatalf("a member sees the invitations: %s", body)
	}
	mcsrf := max.csrf("/orgs/acme/settings/members")
	for _, path := range []string{revoke, "/orgs/acme/settings/members"} {
		if st, _, _ := max.do("POST", path, url.Values{"csrf": {mcsrf}, "email": {"x@y.test"}}); st != 403 {
			t.Fatalf("member POST %s: %d", path, st)
		}
	}
	// Another organization's admin gets 404 for acme's invitation.
	gus := e.client()
	gus.signIn("gus@globex.test")
	gcsrf := gus.csrf("/orgs/globex/settings/members")
	if st, _, body := gus.do("POST", strings.Replace(revoke, "/acme/", "/globex/", 1), url.Values{"csrf": {gcsrf}}); st != 404 || !strings.Contains(body, "Invitation not found") {
		t.Fatalf("other org revoke: %d %s", st, body)
	}
	if st, _, _ := gus.do("POST", revoke, url.Values{"csrf": {gcsrf}}); st != 404 {
		t.Fatalf("revoke in an organization one is not in: %d", st)
	}
	if l, _ := e.db.ListInvitations(context.Background(), e.acme.ID); len(l) != 2 {
		t.Fatal("another organization revoked an invitation")
	}
	if st, loc, _ := ada.do("POST", revoke, url.Values{"csrf": {csrf}}); st != 303 || loc != "/orgs/acme/settings/members" {
		t.Fatalf("revoke: %d %s", st, loc)
	}
	if _, _, body := ada.do("GET", "/orgs/acme/settings/members", nil); !strings.Contains(body, "Revoked the invitation of "+invs[0].Email) {
		t.Fatalf("revoke message: %s", body)
	}
	e.noSecretsLogged()
}
