package web_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
)

// formClient is a cookie-keeping HTTP client that posts HTML forms the way
// a browser without JavaScript does.
type formClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newFormClient(t *testing.T, base string) *formClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &formClient{t: t, base: base, c: &http.Client{Jar: jar}}
}

// do sends a request and returns the final status and body, after
// following redirects.
func (f *formClient) do(method, path string, form url.Values) (int, string) {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, f.base+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := f.c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the session's CSRF token from a page.
func (f *formClient) csrf(path string) string {
	f.t.Helper()
	_, body := f.do("GET", path, nil)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		f.t.Fatalf("no CSRF field on %s", path)
	}
	return m[1]
}

// TestFormsWithoutJavaScript drives the UI with plain form posts: the rules
// hold for clients that are not a browser, and every result page is
// searched for the tokens sent.
func TestFormsWithoutJavaScript(t *testing.T) {
	srv := startUIServer(t)
	admin := newFormClient(t, srv.URL)
	st, body := admin.do("POST", srv.SetupPath, url.Values{"org_name": {"Acme Inc"}, "org_slug": {"acme"}, "email": {adminEmail},
		"name": {"Ada"}, "password": {adminPassword}, "password_confirm": {adminPassword}})
	if st != 200 || !strings.Contains(body, "Welcome to kitewatch") {
		t.Fatalf("setup: %d %s", st, body)
	}
	// The welcome is shown once: a reload does not repeat it.
	if _, body := admin.do("GET", "/orgs/acme", nil); strings.Contains(body, "Welcome to kitewatch") {
		t.Fatal("flash message shown twice")
	}
	// A link cannot put words on a page.
	if _, body := admin.do("GET", "/orgs/acme?flash=Your+account+is+locked", nil); strings.Contains(body, "locked") {
		t.Fatal("?flash= is rendered")
	}
	csrf := admin.csrf("/orgs/acme")
	tokens := map[string]string{}
	for _, tk := range bksim.Demo().Tokens() {
		tokens[tk.Name] = tk.Value
	}
	noSecrets := func(what, body string) {
		t.Helper()
		for name, v := range tokens {
			if strings.Contains(body, v) {
				t.Fatalf("%s: the page contains the %s token", what, name)
			}
		}
	}

	cases := []struct {
		name   string
		path   string
		form   url.Values
		status int
		says   []string
	}{
		{"no csrf", bkPage + "/connect", url.Values{"token": {tokens["good"]}}, 403, []string{"This form has expired"}},
		{"empty token", bkPage + "/connect", url.Values{"csrf": {csrf}, "token": {""}}, 422, []string{"Token is required"}},
		{"missing scopes", bkPage + "/connect", url.Values{"csrf": {csrf}, "token": {tokens["missing-scopes"]}}, 200,
			[]string{"Buildkite did not accept this token", "read_build_logs", "read_suites", "missing_scopes"}},
		{"no organization access", bkPage + "/connect", url.Values{"csrf": {csrf}, "token": {tokens["no-org-access"]}}, 200,
			[]string{"Buildkite did not accept this token"}},
		{"wrong organization", bkPage + "/connect", url.Values{"csrf": {csrf}, "token": {tokens["good"]}, "organization": {"globex"}}, 200,
			[]string{"Buildkite did not accept this token", `value="globex"`}},
		{"several organizations", bkPage + "/connect", url.Values{"csrf": {csrf}, "token": {tokens["multi-org"]}}, 200,
			[]string{"One more step: choose the Buildkite organization", `type="radio" name="organization" value="acme"`,
				`type="radio" name="organization" value="acme-labs"`, "All 9 required scopes granted"}},
		{"verify before connect", bkPage + "/verify", url.Values{"csrf": {csrf}}, 200, []string{"Buildkite is not connected"}},
		{"good", bkPage + "/connect", url.Values{"csrf": {csrf}, "token": {tokens["good"]}}, 200, []string{"Buildkite is connected", "9 of 9 required scopes granted"}},
		{"rotate to expired", bkPage + "/rotate", url.Values{"csrf": {csrf}, "token": {tokens["expired"]}, "revoke_previous": {"1"}}, 200,
			[]string{"kitewatch kept using the current token."}},
		{"api token", "/orgs/acme/settings/tokens", url.Values{"csrf": {csrf}, "name": {"ci"}}, 201, []string{"Copy it now"}},
		{"audit older page", "/orgs/acme/settings/audit?before=1", nil, 200, []string{"No events before this point."}},
		{"audit bad page", "/orgs/acme/settings/audit?before=x", nil, 422, []string{"This audit log page does not exist."}},
	}
	for _, c := range cases {
		method := "POST"
		if c.form == nil {
			method = "GET"
		}
		st, body := admin.do(method, c.path, c.form)
		if st != c.status {
			t.Fatalf("%s: status %d, want %d: %s", c.name, st, c.status, body)
		}
		for _, s := range c.says {
			if !strings.Contains(body, s) {
				t.Fatalf("%s: page does not say %q:\n%s", c.name, s, body)
			}
		}
		noSecrets(c.name, body)
		if strings.Contains(body, `name="token" type="password" value`) {
			t.Fatalf("%s: token field has a value", c.name)
		}
	}
	if d := deletes(srv.Sim); len(d) != 0 {
		t.Fatalf("a failed rotation revoked a token: %v", d)
	}

	// The member sees the status, no forms, and is refused on every change.
	member := newFormClient(t, srv.URL)
	joinByForm(t, admin, member, memberEmail, "Max", memberPassword)
	if st, _ := member.do("POST", "/signin", url.Values{"email": {memberEmail}, "password": {memberPassword}}); st != 200 {
		t.Fatalf("member sign-in: %d", st)
	}
	st, body = member.do("GET", bkPage, nil)
	if st != 200 || !strings.Contains(body, "Connected") || strings.Contains(body, `action="`+bkPage) {
		t.Fatalf("member view: %d %s", st, body)
	}
	mcsrf := member.csrf(bkPage)
	// Token checks and revocations go to /v2/access-token; the background
	// poll that connecting started may still be reading builds meanwhile.
	tokenCalls := func() int {
		n := 0
		for _, r := range srv.Sim.Requests() {
			if r.Path == "/v2/access-token" {
				n++
			}
		}
		return n
	}
	before := tokenCalls()
	for _, path := range []string{bkPage + "/connect", bkPage + "/verify", bkPage + "/rotate", bkPage + "/disconnect",
		"/orgs/acme/settings/members", "/orgs/acme/settings/members/1/role", "/orgs/acme/settings/members/1/remove"} {
		st, body := member.do("POST", path, url.Values{"csrf": {mcsrf}, "token": {tokens["good"]}, "role": {"member"}, "revoke": {"1"}})
		if st != 403 || !strings.Contains(body, "Only admins of this organization can do this.") {
			t.Fatalf("member POST %s: %d %s", path, st, body)
		}
		noSecrets("member POST "+path, body)
	}
	if st, _ := member.do("GET", "/orgs/acme/settings/audit", nil); st != 403 {
		t.Fatalf("member audit log: %d", st)
	}
	if n := tokenCalls(); n != before {
		t.Fatalf("a member's POST reached Buildkite (%d token calls)", n-before)
	}
	// Another organization's pages answer like missing ones.
	if st, _ := member.do("GET", "/orgs/globex/settings/integrations/buildkite", nil); st != 404 {
		t.Fatalf("unknown org: %d", st)
	}
}

// TestFailedConnectSurvivesReload: a failed connect answers with a redirect
// to a result page that can be reloaded without sending the token again,
// and the token is in neither the redirect nor the cookie that carries the
// result. The result is only shown to the session that made the attempt.
func TestFailedConnectSurvivesReload(t *testing.T) {
	srv := startUIServer(t)
	admin := newFormClient(t, srv.URL)
	if st, body := admin.do("POST", srv.SetupPath, url.Values{"org_name": {"Acme Inc"}, "org_slug": {"acme"}, "email": {adminEmail},
		"name": {"Ada"}, "password": {adminPassword}, "password_confirm": {adminPassword}}); st != 200 {
		t.Fatalf("setup: %d %s", st, body)
	}
	csrf := admin.csrf(bkPage)
	tok := bksim.DemoTokenValue("missing-scopes")

	// The POST itself: a 303 whose Location and cookies hold no token.
	noFollow := &http.Client{Jar: admin.c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.PostForm(srv.URL+bkPage+"/connect", url.Values{"csrf": {csrf}, "token": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, bkPage+"?attempt=") {
		t.Fatalf("failed connect answered %d, Location %q; want 303 to the Buildkite page with ?attempt=", res.StatusCode, loc)
	}
	var carrier *http.Cookie
	for _, c := range res.Cookies() {
		if strings.Contains(c.Value, tok) || strings.Contains(c.Value, url.QueryEscape(tok)) {
			t.Fatalf("cookie %s holds the token", c.Name)
		}
		if c.Name == "kw_attempt" {
			carrier = c
		}
	}
	if carrier == nil || !carrier.HttpOnly || carrier.Path != bkPage || carrier.MaxAge <= 0 {
		t.Fatalf("result cookie: %+v", carrier)
	}
	if strings.Contains(loc, tok[5:]) {
		t.Fatal("the redirect holds the token")
	}

	// The result page, twice: the same result, and Buildkite is not asked again.
	before := len(srv.Sim.Requests())
	for i := range 2 {
		st, body := admin.do("GET", loc, nil)
		if st != 200 {
			t.Fatalf("result page load %d: status %d", i+1, st)
		}
		for _, want := range []string{"Buildkite did not accept this token", "missing_scopes", "read_build_logs", "2 of 9 required scopes missing.", "Try again"} {
			if !strings.Contains(body, want) {
				t.Fatalf("result page load %d does not say %q", i+1, want)
			}
		}
		if strings.Contains(body, tok) {
			t.Fatal("the result page holds the token")
		}
	}
	if n := len(srv.Sim.Requests()) - before; n != 0 {
		t.Fatalf("reloading the result sent %d requests to Buildkite", n)
	}

	// Another id, or the same cookie in another session, shows no result.
	if _, body := admin.do("GET", bkPage+"?attempt=AAAAAAAAAAAAAAAA", nil); strings.Contains(body, "Buildkite did not accept this token") ||
		!strings.Contains(body, "The result of that attempt is no longer shown") {
		t.Fatal("a made-up attempt id shows a result, or no note")
	}
	other := newFormClient(t, srv.URL)
	if st, _ := other.do("POST", "/signin", url.Values{"email": {adminEmail}, "password": {adminPassword}}); st != 200 {
		t.Fatalf("second sign-in: %d", st)
	}
	u, _ := url.Parse(srv.URL + bkPage)
	other.c.Jar.SetCookies(u, []*http.Cookie{{Name: carrier.Name, Value: carrier.Value, Path: carrier.Path}})
	if _, body := other.do("GET", loc, nil); strings.Contains(body, "Buildkite did not accept this token") {
		t.Fatal("another session is shown this session's result")
	}

	// The form's address, opened directly, leads to the Buildkite page.
	noFollowGet, err := noFollow.Get(srv.URL + bkPage + "/connect")
	if err != nil {
		t.Fatal(err)
	}
	noFollowGet.Body.Close()
	if noFollowGet.StatusCode != http.StatusSeeOther || noFollowGet.Header.Get("Location") != bkPage {
		t.Fatalf("GET connect: %d to %q", noFollowGet.StatusCode, noFollowGet.Header.Get("Location"))
	}
	// Unknown addresses get the HTML 404 page, with the navigation.
	if st, body := admin.do("GET", "/no/such/page", nil); st != 404 || !strings.Contains(body, "Page not found") || !strings.Contains(body, "Sign out") {
		t.Fatalf("unknown path: %d %s", st, body)
	}
}
