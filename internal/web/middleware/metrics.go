package middleware

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics records HTTP request counts and latencies by route pattern.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// NewMetrics creates the HTTP collectors and registers them on reg (not the
// global registry, so each test server can have its own):
// kitewatch_http_requests_total{route,method,status},
// kitewatch_http_request_duration_seconds{route,method} and
// kitewatch_http_requests_in_flight. It fails when they are already
// registered on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kitewatch_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kitewatch_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route pattern and method.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kitewatch_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inFlight} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register http metrics: %w", err)
		}
	}
	return m, nil
}

// Middleware counts and times each request. The route label is the matched
// pattern (see CaptureRoute) or "unmatched", never the raw path, and methods
// outside the standard set are counted as "OTHER", so label cardinality stays
// bounded whatever clients send. A request whose handler aborts the response
// is counted with status "aborted".
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		holder, r := withRouteHolder(r)
		rec := NewStatusRecorder(w)
		m.inFlight.Inc()
		completed := false
		defer func() {
			m.inFlight.Dec()
			route, method := routeLabel(holder, r), methodLabel(r.Method)
			status := "aborted"
			if completed {
				code := rec.Status()
				if code == 0 {
					code = http.StatusOK
				}
				status = strconv.Itoa(code)
			}
			m.requests.WithLabelValues(route, method, status).Inc()
			m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rec, r)
		completed = true
	})
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}
