package middleware

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
)

// internalErrorJSON is the body of a 500 under /api/, in the API's error shape.
const internalErrorJSON = `{"error":{"code":"internal","message":"internal server error"}}` + "\n"

// Recover turns a panic in the handler into a 500 with a generic body (JSON
// under /api/, plain text elsewhere) and logs it at Error with the stack. The
// panic value itself is logged only when it is a runtime error (nil
// dereference, index out of range), whose text holds no data; otherwise only
// its type is, because a value could carry a secret. http.ErrAbortHandler is
// re-panicked so the server aborts the response as intended, and a panic after
// the status line was sent aborts the response the same way, so the client
// sees a broken response rather than a truncated one that looks complete.
func Recover(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := NewStatusRecorder(w)
			defer func() {
				p := recover()
				if p == nil {
					return
				}
				if p == http.ErrAbortHandler {
					panic(p)
				}
				attrs := []slog.Attr{
					slog.String("panic_type", fmt.Sprintf("%T", p)),
					slog.String("method", truncate(r.Method, 16)),
					slog.String("path", SafePath(r.URL.Path)),
					slog.String("request_id", RequestIDFrom(r.Context())),
					slog.String("stack", string(debug.Stack())),
				}
				if re, ok := p.(runtime.Error); ok {
					attrs = append(attrs, slog.String("panic", re.Error()))
				}
				logger.LogAttrs(r.Context(), slog.LevelError, "panic serving request", attrs...)
				if rec.WroteHeader() {
					panic(http.ErrAbortHandler)
				}
				writeInternalError(w, r)
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

// writeInternalError writes the generic 500, dropping headers the handler
// may have set for the response it did not finish.
func writeInternalError(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for _, k := range []string{"Content-Length", "Content-Encoding", "Content-Disposition", "Content-Range", "Set-Cookie", "Etag", "Last-Modified", "Location", "Trailer"} {
		h.Del(k)
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if isAPI(r) {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(internalErrorJSON))
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte("internal server error\n"))
}

// isAPI reports whether r is for the JSON API.
func isAPI(r *http.Request) bool {
	return r.URL.Path == "/api" || strings.HasPrefix(r.URL.Path, "/api/")
}
