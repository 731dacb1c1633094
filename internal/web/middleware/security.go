package middleware

import (
	"net/http"
	"strconv"
	"time"
)

// DefaultCSP allows only same-origin resources (plus data: images), no inline
// script or style, no framing, no <base> and same-origin form targets.
const DefaultCSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
	"object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// defaultPermissionsPolicy turns off powerful features kitewatch never uses.
const defaultPermissionsPolicy = "accelerometer=(), camera=(), geolocation=(), gyroscope=(), " +
	"magnetometer=(), microphone=(), payment=(), usb=(), browsing-topics=()"

// SecurityOptions configure SecurityHeaders. The zero value is sensible for
// plain HTTP.
type SecurityOptions struct {
	// TLS says browsers reach the service over HTTPS (directly or through a
	// TLS-terminating proxy); only then is Strict-Transport-Security sent.
	TLS bool
	// HSTSMaxAge is the Strict-Transport-Security max-age; one year when zero.
	HSTSMaxAge time.Duration
	// HSTSIncludeSubdomains adds includeSubDomains to the HSTS header.
	HSTSIncludeSubdomains bool
	// CSP replaces DefaultCSP when not empty.
	CSP string
	// NoStore selects responses sent with "Cache-Control: no-store". When nil,
	// DefaultNoStore is used. Pass a function that also checks for the
	// session cookie to cover authenticated HTML pages.
	NoStore func(*http.Request) bool
}

// DefaultNoStore selects requests under /api/ and requests carrying an
// Authorization header: their responses hold account data that shared or
// browser caches must not keep.
func DefaultNoStore(r *http.Request) bool {
	return isAPI(r) || r.Header.Get("Authorization") != ""
}

// SecurityHeaders sets the security headers on every response before the
// handler runs: Content-Security-Policy, X-Content-Type-Options,
// Referrer-Policy, X-Frame-Options, Cross-Origin-Opener-Policy,
// Cross-Origin-Resource-Policy, Permissions-Policy, Strict-Transport-Security
// when opts.TLS, and Cache-Control: no-store for the requests opts.NoStore
// selects. Handlers may override any of them.
func SecurityHeaders(opts SecurityOptions) func(http.Handler) http.Handler {
	csp := opts.CSP
	if csp == "" {
		csp = DefaultCSP
	}
	hsts := ""
	if opts.TLS {
		age := opts.HSTSMaxAge
		if age <= 0 {
			age = 365 * 24 * time.Hour
		}
		hsts = "max-age=" + strconv.FormatInt(int64(age/time.Second), 10)
		if opts.HSTSIncludeSubdomains {
			hsts += "; includeSubDomains"
		}
	}
	noStore := opts.NoStore
	if noStore == nil {
		noStore = DefaultNoStore
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "same-origin")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Cross-Origin-Opener-Policy", "same-origin")
			h.Set("Cross-Origin-Resource-Policy", "same-origin")
			h.Set("Permissions-Policy", defaultPermissionsPolicy)
			if hsts != "" {
				h.Set("Strict-Transport-Security", hsts)
			}
			if noStore(r) {
				h.Set("Cache-Control", "no-store")
			}
			next.ServeHTTP(w, r)
		})
	}
}
