package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/kitewatch/kitewatch/internal/auth"
	"github.com/kitewatch/kitewatch/internal/bk"
)

// A failed connect or rotate answers with a redirect (Post/Redirect/Get),
// so reloading the result page shows the result again instead of sending
// the token to Buildkite a second time. The result travels in a short-lived
// cookie, never the token: the report's problems, the masked token and its
// scopes. The redirect's ?attempt= names the result; the cookie is signed
// with a key derived from the session's secret (the HttpOnly session
// cookie, which no page shows, unlike the CSRF token in every form) and the
// organization, so only this session's own attempt is shown and neither a
// link nor a script on the page can put words on it; it carries the time
// it was made, so a kept copy stops working after attemptMaxAge even if
// the browser does not drop it.
const (
	attemptCookie = "kw_attempt"
	attemptMaxAge = 600 // seconds: how long a reload still shows the result
	// attemptMaxCookie keeps the cookie under browsers' 4 KB limit; a
	// larger result is rendered in the POST response instead.
	attemptMaxCookie = 3800
)

// savedAttempt is what the cookie holds.
type savedAttempt struct {
	ID       string    `json:"id"`
	At       int64     `json:"t"` // when it was saved, Unix seconds (server clock)
	Action   string    `json:"a"`
	OrgInput string    `json:"o,omitempty"`
	Orgs     []string  `json:"os,omitempty"`
	Report   bk.Report `json:"r"`
}

// compactReport keeps what the result page shows: problems (without their
// data), the masked token and its scopes.
func compactReport(r bk.Report) bk.Report {
	out := bk.Report{Token: bk.TokenFacts{Masked: r.Token.Masked, Scopes: r.Token.Scopes, MissingScopes: r.Token.MissingScopes}}
	for _, p := range r.Problems {
		p.Data = nil
		out.Problems = append(out.Problems, p)
	}
	return out
}

// attemptMAC signs payload for org with a key derived from the session
// secret; ok is false when the request carries no session cookie.
func (s *Server) attemptMAC(r *http.Request, org, payload string) (mac string, ok bool) {
	c, err := r.Cookie(auth.SessionCookieName(s.Secure))
	if err != nil || c.Value == "" {
		return "", false
	}
	k := hmac.New(sha256.New, []byte(c.Value))
	k.Write([]byte("kitewatch " + attemptCookie + " key"))
	m := hmac.New(sha256.New, k.Sum(nil))
	m.Write([]byte(attemptCookie + "\x00" + org + "\x00" + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)), true
}

// saveAttempt stores a failed attempt's result for the page the redirect
// leads to and returns its id; ok is false when it does not fit in a
// cookie.
func (s *Server) saveAttempt(w http.ResponseWriter, r *http.Request, p *principal, a savedAttempt) (id string, ok bool) {
	if p.Session == nil || p.Org == nil {
		return "", false
	}
	id = rand.Text()[:16]
	a.ID = id
	a.At = s.db.Now().Unix()
	a.Report = compactReport(a.Report)
	b, err := json.Marshal(a)
	if err != nil {
		return "", false
	}
	payload := base64.RawURLEncoding.EncodeToString(b)
	mac, ok := s.attemptMAC(r, p.Org.Slug, payload)
	if !ok {
		return "", false
	}
	value := payload + "." + mac
	if len(value) > attemptMaxCookie {
		return "", false
	}
	http.SetCookie(w, &http.Cookie{Name: attemptCookie, Value: value, Path: s.buildkitePath(p),
		MaxAge: attemptMaxAge, HttpOnly: true, Secure: s.Secure, SameSite: http.SameSiteLaxMode})
	return id, true
}

// loadAttempt returns the saved attempt named id, when this session saved
// it for this organization in the last few minutes.
func (s *Server) loadAttempt(r *http.Request, p *principal, id string) (savedAttempt, bool) {
	c, err := r.Cookie(attemptCookie)
	if err != nil || id == "" || p.Session == nil || p.Org == nil || len(c.Value) > attemptMaxCookie {
		return savedAttempt{}, false
	}
	payload, mac, ok := strings.Cut(c.Value, ".")
	if !ok {
		return savedAttempt{}, false
	}
	want, ok := s.attemptMAC(r, p.Org.Slug, payload)
	if !ok || !hmac.Equal([]byte(mac), []byte(want)) {
		return savedAttempt{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return savedAttempt{}, false
	}
	var a savedAttempt
	if err := json.Unmarshal(b, &a); err != nil || a.ID != id || (a.Action != "connect" && a.Action != "rotate") {
		return savedAttempt{}, false
	}
	if age := s.db.Now().Unix() - a.At; age < -60 || age > attemptMaxAge { // a minute of clock skew between replicas
		return savedAttempt{}, false
	}
	return a, true
}

// clearAttempt drops a saved result (after a successful connect or rotate).
func (s *Server) clearAttempt(w http.ResponseWriter, r *http.Request, p *principal) {
	if _, err := r.Cookie(attemptCookie); err != nil {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: attemptCookie, Value: "", Path: s.buildkitePath(p), MaxAge: -1,
		HttpOnly: true, Secure: s.Secure, SameSite: http.SameSiteLaxMode})
}
