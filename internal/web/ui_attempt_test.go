package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/auth"
	"github.com/kitewatch/kitewatch/internal/bk"
	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/store/sqlite"
)

// TestAttemptCookie checks the signed result cookie of a failed connect:
// it is shown back to its own session and organization only, while it is
// fresh; the CSRF token (which every page shows) cannot forge it; and it
// holds no token.
func TestAttemptCookie(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: time.Now().UTC()}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), sqlite.FileName), store.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &Server{Options: Options{DB: db}, db: db}
	sessA, _, _ := auth.NewToken(auth.PrefixSession)
	sessB, _, _ := auth.NewToken(auth.PrefixSession)
	acme, globex := &ci.Org{ID: 1, Slug: "acme"}, &ci.Org{ID: 2, Slug: "globex"}
	p := &principal{Session: &ci.Session{CSRFToken: "csrf_visible_in_every_form"}, Org: acme}
	req := func(session string, cookie *http.Cookie) *http.Request {
		r := httptest.NewRequest("GET", "/orgs/acme/settings/integrations/buildkite", nil)
		if session != "" {
			r.AddCookie(auth.SessionCookie(session, clock.Now().Add(time.Hour), false))
		}
		if cookie != nil {
			r.AddCookie(cookie)
		}
		return r
	}
	const secret = "bkua_0123456789abcdef0123456789abcdef01234567"
	rep := bk.Report{Token: bk.TokenFacts{Masked: "bkua_…4567", Scopes: []string{"read_builds"}},
		Problems: []bk.Problem{{Code: "missing_scopes", Message: "2 of 9 required scopes missing.", Data: map[string]any{"raw": secret}}}}
	w := httptest.NewRecorder()
	id, ok := s.saveAttempt(w, req(sessA, nil), p, savedAttempt{Action: "connect", OrgInput: "acme-bk", Report: rep})
	if !ok {
		t.Fatal("saveAttempt refused a small result")
	}
	var c *http.Cookie
	for _, k := range w.Result().Cookies() {
		if k.Name == attemptCookie {
			c = k
		}
	}
	if c == nil || !c.HttpOnly || c.MaxAge != attemptMaxAge || strings.Contains(c.Value, "0123456789abcdef") {
		t.Fatalf("attempt cookie %+v", c)
	}
	if a, ok := s.loadAttempt(req(sessA, c), p, id); !ok || a.Report.Problems[0].Code != "missing_scopes" || a.OrgInput != "acme-bk" {
		t.Fatalf("own attempt = %+v, %v", a, ok)
	}
	// Another id, session or organization, or no session cookie: nothing.
	for name, r := range map[string]struct {
		req *http.Request
		p   *principal
		id  string
	}{
		"other id":      {req(sessA, c), p, "AAAAAAAAAAAAAAAA"},
		"other session": {req(sessB, c), p, id},
		"no session":    {req("", c), p, id},
		"other org":     {req(sessA, c), &principal{Session: p.Session, Org: globex}, id},
	} {
		if _, ok := s.loadAttempt(r.req, r.p, r.id); ok {
			t.Fatalf("%s: the attempt was shown", name)
		}
	}
	// A cookie signed the old way, with the CSRF token every page shows,
	// or with the payload edited, is refused.
	payload, _, _ := strings.Cut(c.Value, ".")
	forged := *c
	forged.Value = payload + "." + oldAttemptMAC(p.Session.CSRFToken, "acme", payload)
	if _, ok := s.loadAttempt(req(sessA, &forged), p, id); ok {
		t.Fatal("a cookie signed with the CSRF token was accepted")
	}
	forged.Value = "e30" + c.Value[len(payload):] // "{}" with the real signature
	if _, ok := s.loadAttempt(req(sessA, &forged), p, id); ok {
		t.Fatal("an edited cookie was accepted")
	}
	// Kept past its lifetime (a browser that ignores Max-Age, a copied
	// cookie): no longer shown.
	clock.Add(attemptMaxAge*time.Second + time.Second)
	if _, ok := s.loadAttempt(req(sessA, c), p, id); ok {
		t.Fatal("an expired attempt cookie was accepted")
	}
}

// oldAttemptMAC is how the cookie was signed before: with the session's
// CSRF token, which every form on the page shows.
func oldAttemptMAC(key, org, payload string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(attemptCookie + "\x00" + org + "\x00" + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
