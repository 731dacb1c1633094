package middleware

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestCSRF(t *testing.T) {
	mw, err := CSRF(CSRFOptions{TrustedOrigins: []string{"https://trusted.example"}})
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	tests := []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		want    int
	}{
		{"same origin post", "POST", "/api/v1/user/tokens", map[string]string{"Sec-Fetch-Site": "same-origin", "Cookie": "kitewatch_session=s"}, 204},
		{"cross site post with cookie", "POST", "/api/v1/user/tokens", map[string]string{"Sec-Fetch-Site": "cross-site", "Cookie": "kitewatch_session=s"}, 403},
		{"same site is not same origin", "DELETE", "/api/v1/user/tokens/1", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"cross site login form", "POST", "/login", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"old browser foreign origin", "POST", "/login", map[string]string{"Origin": "https://evil.example"}, 403},
		{"old browser own origin", "POST", "/login", map[string]string{"Origin": "http://example.com"}, 204},
		{"trusted origin", "POST", "/login", map[string]string{"Origin": "https://trusted.example", "Sec-Fetch-Site": "cross-site"}, 204},
		{"cross site get", "GET", "/api/v1/orgs/acme", map[string]string{"Sec-Fetch-Site": "cross-site"}, 204},
		{"cross site bearer", "POST", "/api/v1/user/tokens", map[string]string{"Sec-Fetch-Site": "cross-site", "Authorization": "Bearer kw_x"}, 204},
		{"empty bearer is not exempt", "POST", "/api/v1/user/tokens", map[string]string{"Sec-Fetch-Site": "cross-site", "Authorization": "Bearer "}, 403},
		{"basic is not exempt", "POST", "/api/v1/user/tokens", map[string]string{"Sec-Fetch-Site": "cross-site", "Authorization": "Basic eDp5"}, 403},
		{"non-browser client", "POST", "/webhooks/buildkite", nil, 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "http://example.com"+tt.path, nil)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d", rec.Code, tt.want)
			}
			if tt.want == 403 && strings.HasPrefix(tt.path, "/api/") && rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("API refusal is %q, want JSON", rec.Header().Get("Content-Type"))
			}
		})
	}
	if _, err := CSRF(CSRFOptions{TrustedOrigins: []string{"not a url"}}); err == nil {
		t.Error("malformed trusted origin accepted")
	}
}

func TestCSRFToken(t *testing.T) {
	tok := NewCSRFToken()
	if len(tok) < 26 || NewCSRFToken() == tok {
		t.Fatalf("token %q is short or repeats", tok)
	}
	if !CSRFTokenMatches(tok, tok) || CSRFTokenMatches(tok, tok+"x") || CSRFTokenMatches(tok, "") || CSRFTokenMatches("", "") {
		t.Error("CSRFTokenMatches is wrong")
	}
	form := httptest.NewRequest("POST", "/settings", strings.NewReader(url.Values{CSRFFormField: {tok}}.Encode()))
	form.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if got := CSRFTokenFrom(form); got != tok {
		t.Errorf("form token = %q, want %q", got, tok)
	}
	hdr := httptest.NewRequest("POST", "/settings", nil)
	hdr.Header.Set(CSRFHeader, tok)
	if got := CSRFTokenFrom(hdr); got != tok {
		t.Errorf("header token = %q, want %q", got, tok)
	}
}
