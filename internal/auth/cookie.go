package auth

import (
	"net/http"
	"time"
)

// Session cookie names. The "__Host-" prefix makes browsers refuse the cookie
// unless it is Secure, has Path=/ and no Domain, so a sibling subdomain cannot
// plant or overwrite it. It needs HTTPS, so plain-HTTP development uses the
// bare name.
const (
	sessionCookieSecure   = "__Host-kitewatch_session"
	sessionCookieInsecure = "kitewatch_session"
)

// SessionCookieName returns the session cookie's name for a server that is
// (secure) or is not served over HTTPS.
func SessionCookieName(secure bool) string {
	if secure {
		return sessionCookieSecure
	}
	return sessionCookieInsecure
}

// SessionCookie returns the browser session cookie carrying value: HttpOnly,
// SameSite=Lax, Path=/, and Secure with the __Host- name when secure. A zero
// expires makes a cookie that lasts until the browser closes.
func SessionCookie(value string, expires time.Time, secure bool) *http.Cookie {
	c := &http.Cookie{
		Name:     SessionCookieName(secure),
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
	if !expires.IsZero() {
		c.Expires = expires.UTC()
	}
	return c
}

// ClearSessionCookie returns a cookie that makes the browser delete the
// session cookie (sign-out), with the same attributes it was set with.
func ClearSessionCookie(secure bool) *http.Cookie {
	c := SessionCookie("", time.Unix(0, 0), secure)
	c.MaxAge = -1
	return c
}
