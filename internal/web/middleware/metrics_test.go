package middleware

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
	if _, err := NewMetrics(prometheus.NewRegistry()); err != nil {
		t.Errorf("a second registry: %v", err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/orgs/{org}", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("POST /api/v1/orgs/{org}/members", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnprocessableEntity)
	})
	logger, _ := newTestLogger()
	h := Chain(CaptureRoute(mux), RequestID, m.Middleware, Recover(logger))

	reqs := []struct{ method, path string }{
		{"GET", "/api/v1/orgs/acme"},
		{"GET", "/api/v1/orgs/other"},
		{"POST", "/api/v1/orgs/acme/members"},
		{"GET", "/random/path/1"},
		{"GET", "/random/path/2"},
		{"BREW", "/api/v1/orgs/acme"},
	}
	for _, r := range reqs {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(r.method, r.path, nil))
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[[3]string]float64{}
	histograms := map[[2]string]uint64{}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			labels := map[string]string{}
			for _, lp := range metric.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			switch f.GetName() {
			case "kitewatch_http_requests_total":
				counts[[3]string{labels["route"], labels["method"], labels["status"]}] = metric.GetCounter().GetValue()
			case "kitewatch_http_request_duration_seconds":
				histograms[[2]string{labels["route"], labels["method"]}] = metric.GetHistogram().GetSampleCount()
			case "kitewatch_http_requests_in_flight":
				if v := metric.GetGauge().GetValue(); v != 0 {
					t.Errorf("in flight = %v after all requests finished", v)
				}
			}
		}
	}
	wantCounts := map[[3]string]float64{
		{"GET /api/v1/orgs/{org}", "GET", "200"}:           2,
		{"POST /api/v1/orgs/{org}/members", "POST", "422"}: 1,
		{"unmatched", "GET", "404"}:                        2,
		{"unmatched", "OTHER", "405"}:                      1,
	}
	if len(counts) != len(wantCounts) {
		t.Errorf("counter series = %v, want %v", counts, wantCounts)
	}
	for k, v := range wantCounts {
		if counts[k] != v {
			t.Errorf("requests_total%v = %v, want %v", k, counts[k], v)
		}
	}
	if histograms[[2]string{"GET /api/v1/orgs/{org}", "GET"}] != 2 || histograms[[2]string{"unmatched", "GET"}] != 2 {
		t.Errorf("histogram counts = %v", histograms)
	}
}

func TestMetricsCountsPanicsAs500(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) { panic("x") })
	logger, _ := newTestLogger()
	Chain(CaptureRoute(mux), m.Middleware, Recover(logger)).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/boom", nil))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range families {
		if f.GetName() != "kitewatch_http_requests_total" {
			continue
		}
		for _, metric := range f.GetMetric() {
			labels := map[string]string{}
			for _, lp := range metric.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["route"] == "GET /boom" && labels["status"] == "500" && metric.GetCounter().GetValue() == 1 {
				found = true
			}
		}
	}
	if !found {
		t.Error("panicking request not counted as route GET /boom status 500")
	}
}
