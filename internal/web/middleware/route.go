package middleware

import (
	"context"
	"net/http"
)

// routeHolder carries the matched route pattern from CaptureRoute, deep in
// the chain, back out to AccessLog and Metrics.
type routeHolder struct{ pattern string }

type routeKey struct{}

// withRouteHolder returns the request's holder, adding one if there is none.
func withRouteHolder(r *http.Request) (*routeHolder, *http.Request) {
	if h, ok := r.Context().Value(routeKey{}).(*routeHolder); ok {
		return h, r
	}
	h := &routeHolder{}
	return h, r.WithContext(context.WithValue(r.Context(), routeKey{}, h))
}

// CaptureRoute wraps the router (usually an *http.ServeMux) so that the
// pattern it matched, r.Pattern, is reported to AccessLog and Metrics even
// when the handler panics.
func CaptureRoute(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if h, ok := r.Context().Value(routeKey{}).(*routeHolder); ok {
				h.pattern = r.Pattern
			}
		}()
		mux.ServeHTTP(w, r)
	})
}

// routeLabel returns the matched pattern, or "unmatched". It never returns
// the raw path, whose values are unbounded.
func routeLabel(h *routeHolder, r *http.Request) string {
	if h.pattern != "" {
		return h.pattern
	}
	if r.Pattern != "" {
		return r.Pattern
	}
	return "unmatched"
}
