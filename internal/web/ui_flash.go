package web

import (
	"net/http"
	"net/url"
	"strings"
)

// Flash kinds.
const (
	flashOK    = "ok"
	flashError = "error"
)

// flashCookie carries the one-time message of a redirect-after-POST. A
// cookie rather than a query parameter: a link cannot put words on a
// kitewatch page, and a reload does not show the message twice.
const flashCookie = "kw_flash"

// redirectFlash answers a form POST with a 303 to path and a message shown
// once on the next page.
func (s *Server) redirectFlash(w http.ResponseWriter, r *http.Request, path, kind, msg string) {
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(kind + "|" + msg), Path: "/",
		MaxAge: 60, HttpOnly: true, Secure: s.Secure, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// takeFlash returns the pending flash message, if any, and clears it.
func (s *Server) takeFlash(w http.ResponseWriter, r *http.Request) (kind, msg string) {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return "", ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: s.Secure, SameSite: http.SameSiteLaxMode})
	v, err := url.QueryUnescape(c.Value)
	if err != nil {
		return "", ""
	}
	kind, msg, ok := strings.Cut(v, "|")
	if !ok || (kind != flashOK && kind != flashError) || len(msg) > 500 {
		return "", ""
	}
	return kind, msg
}
