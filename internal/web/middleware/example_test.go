package middleware_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kitewatch/kitewatch/internal/web/middleware"
)

// Example wires the middleware in the intended order around a ServeMux.
func Example() {
	logger := slog.New(middleware.NewRedactingHandler(slog.NewJSONHandler(os.Stderr, nil)))
	metrics, err := middleware.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		panic(err)
	}
	csrf, err := middleware.CSRF(middleware.CSRFOptions{})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	handler := middleware.Chain(middleware.CaptureRoute(mux),
		middleware.RequestID,
		middleware.RealIP([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}),
		middleware.AccessLog(logger),
		metrics.Middleware,
		middleware.Recover(logger),
		middleware.SecurityHeaders(middleware.SecurityOptions{TLS: true}),
		middleware.BodyLimit(1<<20),
		csrf,
	)

	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	fmt.Println(rec.Code, rec.Header().Get("X-Frame-Options"), rec.Header().Get("Strict-Transport-Security"))
	// Output: 200 DENY max-age=31536000
}
