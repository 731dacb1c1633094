package middleware

import (
	"errors"
	"net/http"
)

// BodyLimit caps request bodies at n bytes with http.MaxBytesReader. Reading
// past the cap fails with *http.MaxBytesError (see IsBodyTooLarge), which the
// handler answers with 413, and the server closes the connection instead of
// draining the rest. Routes that need a different cap (webhooks) wrap their
// handler again with their own limit; the smaller one wins.
func BodyLimit(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body != nil && r.Body != http.NoBody {
				// A shallow copy: handlers must not modify the request they get.
				r = r.WithContext(r.Context())
				r.Body = http.MaxBytesReader(w, r.Body, n)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// IsBodyTooLarge reports whether err, possibly wrapped, comes from reading
// past a BodyLimit cap.
func IsBodyTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
