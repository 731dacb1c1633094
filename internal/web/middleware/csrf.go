package middleware

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
)

// Names under which HTML forms and scripts send the synchronizer token.
const (
	CSRFFormField = "csrf_token"
	CSRFHeader    = "X-CSRF-Token"
)

// forbiddenJSON is the body of a refused cross-origin API request.
const forbiddenJSON = `{"error":{"code":"cross_origin","message":"cross-origin request refused"}}` + "\n"

// CSRFOptions configure CSRF.
type CSRFOptions struct {
	// TrustedOrigins are origins ("https://kitewatch.example.com") allowed to
	// send unsafe requests besides the service's own, for example when a
	// proxy rewrites the Host header.
	TrustedOrigins []string
	// Deny answers refused requests; by default 403 with a JSON error under
	// /api/ and plain text elsewhere.
	Deny http.Handler
}

// CSRF returns middleware that refuses cross-origin unsafe browser requests
// with http.CrossOriginProtection, except those authenticated with an
// "Authorization: Bearer" header (see the package doc for why). It fails
// when a trusted origin is malformed.
func CSRF(opts CSRFOptions) (func(http.Handler) http.Handler, error) {
	cop := http.NewCrossOriginProtection()
	for _, o := range opts.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("csrf: add trusted origin: %w", err)
		}
	}
	deny := opts.Deny
	if deny == nil {
		deny = http.HandlerFunc(denyCrossOrigin)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !hasBearer(r) {
				if err := cop.Check(r); err != nil {
					deny.ServeHTTP(w, r)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}

func hasBearer(r *http.Request) bool {
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(cred) != ""
}

func denyCrossOrigin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if isAPI(r) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(forbiddenJSON))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte("cross-origin request refused\n"))
}

// NewCSRFToken returns a random per-session synchronizer token (128 bits) to
// store with the session and render into HTML forms as CSRFFormField.
func NewCSRFToken() string {
	return rand.Text()
}

// CSRFTokenMatches reports, in constant time, whether the token a form or
// script sent matches the session's. An empty session token never matches.
func CSRFTokenMatches(sessionToken, sent string) bool {
	if sessionToken == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(sessionToken), []byte(sent)) == 1
}

// CSRFTokenFrom returns the synchronizer token sent with r: the X-CSRF-Token
// header, else the csrf_token form field (which parses the form, within any
// BodyLimit).
func CSRFTokenFrom(r *http.Request) string {
	if t := r.Header.Get(CSRFHeader); t != "" {
		return t
	}
	return r.PostFormValue(CSRFFormField)
}
