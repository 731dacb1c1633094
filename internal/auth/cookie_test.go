package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSessionCookie(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		secure   bool
		name     string
		wantAttr []string
	}{
		{true, "__Host-kitewatch_session", []string{"Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Expires=Wed, 02 Jan 2030 03:04:05 GMT"}},
		{false, "kitewatch_session", []string{"Path=/", "HttpOnly", "SameSite=Lax"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SessionCookieName(tt.secure); got != tt.name {
				t.Errorf("SessionCookieName = %q, want %q", got, tt.name)
			}
			c := SessionCookie("kws_value", exp, tt.secure)
			if err := c.Valid(); err != nil {
				t.Fatalf("invalid cookie: %v", err)
			}
			rec := httptest.NewRecorder()
			http.SetCookie(rec, c)
			line := rec.Header().Get("Set-Cookie")
			if !strings.HasPrefix(line, tt.name+"=kws_value;") {
				t.Errorf("Set-Cookie %q has wrong name or value", line)
			}
			for _, a := range tt.wantAttr {
				if !strings.Contains(line, a) {
					t.Errorf("Set-Cookie %q lacks %q", line, a)
				}
			}
			if !tt.secure && strings.Contains(line, "Secure") {
				t.Errorf("insecure cookie %q is Secure", line)
			}
			if strings.Contains(line, "Domain") {
				t.Errorf("cookie %q has a Domain", line)
			}

			clear := ClearSessionCookie(tt.secure)
			rec = httptest.NewRecorder()
			http.SetCookie(rec, clear)
			line = rec.Header().Get("Set-Cookie")
			if !strings.HasPrefix(line, tt.name+"=;") || !strings.Contains(line, "Max-Age=0") {
				t.Errorf("clearing Set-Cookie %q does not delete %s", line, tt.name)
			}
		})
	}
}

func TestSessionCookieWithoutExpiry(t *testing.T) {
	c := SessionCookie("v", time.Time{}, true)
	if !c.Expires.IsZero() || c.MaxAge != 0 {
		t.Errorf("cookie has expiry %v / max-age %d, want a browser-session cookie", c.Expires, c.MaxAge)
	}
}
