// Package middleware holds kitewatch's net/http middleware: request ids,
// client IPs behind trusted proxies, access logs that never carry secrets, a
// redacting slog handler, panic recovery, security headers, body size limits,
// Prometheus metrics and CSRF protection.
//
// # Order
//
// Chain applies middleware outermost first. The intended order is
//
//	middleware.Chain(
//		middleware.CaptureRoute(mux),
//		middleware.RequestID,
//		middleware.RealIP(trustedProxies),
//		middleware.AccessLog(logger),
//		metrics.Middleware,
//		middleware.Recover(logger),
//		middleware.SecurityHeaders(opts),
//		middleware.BodyLimit(1<<20),
//		csrf,
//	)
//
// so the log and metrics see the 500 that Recover writes, and every response,
// errors included, carries the security headers. Route labels come from
// r.Pattern, which http.ServeMux sets on the request it is handed; since
// middleware that adds context values hands a copy down the chain, wrap the
// mux itself in CaptureRoute so the pattern reaches AccessLog and Metrics.
// Without it they fall back to their own request's Pattern and, failing
// that, "unmatched".
//
// # What is logged
//
// AccessLog writes method, route pattern, path without the query string,
// status, bytes, duration, request id and client IP. It never reads headers
// other than X-Request-Id and X-Forwarded-For (through RealIP), never the body
// and never the query, which may carry secrets. Path segments shaped like
// kitewatch tokens are replaced by "[REDACTED]". RedactingHandler adds defence
// in depth for every other log line.
//
// # CSRF
//
// CSRF wraps http.CrossOriginProtection: unsafe requests (anything but GET,
// HEAD and OPTIONS) that a browser marks as cross-origin through
// Sec-Fetch-Site or Origin are refused with 403. It applies to every browser
// request, not only those carrying the session cookie, which also blocks
// login CSRF on the sign-in and setup forms. Requests with an
// "Authorization: Bearer" header skip it: a browser never attaches that header
// on its own (it is not an ambient credential) and a cross-origin page cannot
// set it without a CORS preflight that kitewatch never grants. The auth layer
// must therefore authenticate such a request by the bearer token alone and
// never fall back to the session cookie.
//
// Every browser kitewatch supports sends Sec-Fetch-Site (since 2023), so the
// header check is the protection. A per-session synchronizer token
// (ci.Session.CSRFToken, NewCSRFToken, CSRFTokenMatches) is offered as a
// cheap second layer for HTML forms, covering older browsers that send
// neither header; the JSON API does not use it.
package middleware

import "net/http"

// Chain wraps h in the middleware mw, the first being the outermost.
func Chain(h http.Handler, mw ...func(http.Handler) http.Handler) http.Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}
