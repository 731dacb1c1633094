package middleware

import (
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// maxLoggedPath bounds the path written to the log.
const maxLoggedPath = 256

// AccessLog writes one slog line per request at Info (Error for 5xx): method,
// route, path without the query, status, bytes, duration, request id and
// client IP. It never logs headers, cookies, bodies or query strings. A
// request whose handler aborts the response is logged with "aborted": true.
func AccessLog(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			holder, r := withRouteHolder(r)
			rec := NewStatusRecorder(w)
			completed := false
			defer func() {
				status := rec.Status()
				if status == 0 && completed {
					status = http.StatusOK
				}
				level := slog.LevelInfo
				if status >= 500 || !completed {
					level = slog.LevelError
				}
				attrs := []slog.Attr{
					slog.String("method", truncate(r.Method, 16)),
					slog.String("route", routeLabel(holder, r)),
					slog.String("path", SafePath(r.URL.Path)),
					slog.Int("status", status),
					slog.Int64("bytes", rec.BytesWritten()),
					slog.Duration("duration", time.Since(start)),
					slog.String("request_id", RequestIDFrom(r.Context())),
					slog.String("client_ip", requestClientIP(r)),
				}
				if !completed {
					attrs = append(attrs, slog.Bool("aborted", true))
				}
				logger.LogAttrs(r.Context(), level, "http request", attrs...)
			}()
			next.ServeHTTP(rec, r)
			completed = true
		})
	}
}

// SafePath returns p fit for logs: segments shaped like kitewatch tokens
// ("kwsetup_..." in a setup link, say) become "[REDACTED]" and the result is
// at most 256 bytes. It has no query string by construction when given
// r.URL.Path.
func SafePath(p string) string {
	if strings.Contains(p, "_") {
		segs := strings.Split(p, "/")
		for i, s := range segs {
			if looksLikeToken(s) {
				segs[i] = "[REDACTED]"
			}
		}
		p = strings.Join(segs, "/")
	}
	return truncate(p, maxLoggedPath)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// minTokenRandom is the shortest random part treated as a secret. kitewatch
// tokens have 52; 20 also catches truncated and foreign tokens.
const minTokenRandom = 20

// looksLikeToken reports whether s is "<lowercase prefix>_<long random>", the
// shape of every kitewatch secret (see internal/auth).
func looksLikeToken(s string) bool {
	prefix, random, ok := strings.Cut(s, "_")
	if !ok || prefix == "" || len(prefix) > 16 || len(random) < minTokenRandom {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if c := prefix[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	for i := 0; i < len(random); i++ {
		if c := random[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
