package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestPersonNamesAreBounded checks that a person's name given at setup or
// when adding a member is refused with 422 when it is too long or holds
// control characters, and that nothing is created.
func TestPersonNamesAreBounded(t *testing.T) {
	srv := startUIServer(t)
	admin := newFormClient(t, srv.URL)
	setup := func(name string) (int, string) {
		return admin.do("POST", srv.SetupPath, url.Values{"org_name": {"Acme Inc"}, "org_slug": {"acme"}, "email": {adminEmail},
			"name": {name}, "password": {adminPassword}, "password_confirm": {adminPassword}})
	}
	if st, body := setup(strings.Repeat("a", 101)); st != 422 || !strings.Contains(body, "name must be 1 to 100 characters") {
		t.Fatalf("setup with a long name: %d %s", st, body)
	}
	if st, body := setup("Ada"); st != 200 {
		t.Fatalf("setup after a refused name: %d %s", st, body)
	}
	for _, c := range []struct {
		name, code string
	}{
		{strings.Repeat("b", 101), "invalid_name"},
		{"Bob\x00", "invalid_name"},
		{"Bob\nSmith", "invalid_name"},
	} {
		in, _ := json.Marshal(map[string]string{"email": "bob@acme.test", "name": c.name, "password": memberPassword})
		req, err := http.NewRequest("POST", srv.URL+"/api/v1/orgs/acme/members", strings.NewReader(string(in)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := admin.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		if res.StatusCode != 422 || out.Error.Code != c.code {
			t.Fatalf("add member named %q: %d %q, want 422 %s", c.name, res.StatusCode, out.Error.Code, c.code)
		}
	}
	if st, body := admin.do("GET", "/api/v1/orgs/acme/members", nil); st != 200 || strings.Contains(body, "bob@acme.test") {
		t.Fatalf("a refused member was added: %d %s", st, body)
	}
}
