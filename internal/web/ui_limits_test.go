package web_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestFormBodyLimits posts forms that cannot be read, to the setup link, the
// sign-in form and a signed-in form: each answer is the 4xx that names the
// problem (not a CSRF refusal or a wrong password), and nothing is created
// or used up.
func TestFormBodyLimits(t *testing.T) {
	srv := startUIServer(t)
	admin := newFormClient(t, srv.URL)
	huge := url.Values{"email": {adminEmail}, "password": {adminPassword}, "pad": {strings.Repeat("a", 2<<20)}}.Encode()
	for _, path := range []string{srv.SetupPath, "/signin"} {
		if st, body := admin.doRaw("POST", path, huge); st != 413 || !strings.Contains(body, "The request body is too large.") {
			t.Fatalf("POST %s over the limit: %d %s", path, st, body)
		}
	}
	st, body := admin.do("POST", srv.SetupPath, url.Values{"org_name": {"Acme Inc"}, "org_slug": {"acme"}, "email": {adminEmail},
		"name": {"Ada"}, "password": {adminPassword}, "password_confirm": {adminPassword}})
	if st != 200 {
		t.Fatalf("setup: %d %s", st, body)
	}
	csrf := admin.csrf("/orgs/acme")
	for _, c := range []struct {
		name   string
		body   string
		status int
		says   string
	}{
		{"too large", url.Values{"csrf": {csrf}, "name": {strings.Repeat("a", 2<<20)}}.Encode(), 413, "The request body is too large."},
		{"bad escape", "csrf=" + url.QueryEscape(csrf) + "&name=%zz", 422, "The form could not be read"},
	} {
		st, body := admin.doRaw("POST", "/orgs/acme/settings/tokens", c.body)
		if st != c.status || !strings.Contains(body, c.says) {
			t.Fatalf("%s: %d, want %d saying %q: %s", c.name, st, c.status, c.says, body)
		}
	}
	st, body = admin.do("GET", "/api/v1/user/tokens", nil)
	if st != 200 || !strings.Contains(body, `"tokens":[]`) {
		t.Fatalf("a refused form created a token: %d %s", st, body)
	}
}

// doRaw posts a raw form body and returns the final status and body.
func (f *formClient) doRaw(method, path, body string) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.base+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := f.c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}
