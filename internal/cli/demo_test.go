package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
	"github.com/kitewatch/kitewatch/internal/webhook"
)

// hookRecorder is a webhook receiver that checks signatures with the
// secret it currently expects.
type hookRecorder struct {
	mu       sync.Mutex
	secret   string
	verified map[string]int // event → deliveries with a valid signature
	bad      int
	builds   map[string]bool
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if !strings.HasPrefix(r.URL.Path, "/webhooks/buildkite/kwhook_") ||
		webhook.VerifySignature([]byte(h.secret), r.Header.Get("X-Buildkite-Signature"), body, time.Now(), webhook.ReplayWindow) != nil {
		h.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	h.verified[r.Header.Get("X-Buildkite-Event")]++
	var p struct {
		Build struct {
			Number int    `json:"number"`
			State  string `json:"state"`
		} `json:"build"`
		Pipeline struct{ Slug string } `json:"pipeline"`
	}
	if err := json.Unmarshal(body, &p); err == nil && r.Header.Get("X-Buildkite-Event") == "build.finished" {
		h.builds[p.Pipeline.Slug+"#"+p.Build.State] = true
	}
	w.WriteHeader(http.StatusAccepted)
}

func (h *hookRecorder) snapshot() (finished, bad int, outcomes map[string]bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]bool{}
	for k := range h.builds {
		out[k] = true
	}
	return h.verified["build.finished"], h.bad, out
}

func TestDemoWebhooksDeliverLiveBuilds(t *testing.T) {
	sim := bksim.New(bksim.Demo(), bksim.WithWebhookRetry(1, 10*time.Millisecond))
	defer sim.Close()
	rec := &hookRecorder{secret: "kwwhs_first", verified: map[string]int{}, builds: map[string]bool{}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	var out bytes.Buffer
	d := &demoWebhooks{sim: sim, base: func() string { return srv.URL }, interval: 30 * time.Millisecond,
		step: 5 * time.Millisecond, out: &out}
	defer d.close()

	// No endpoint configured: the simulator starts nothing.
	time.Sleep(50 * time.Millisecond)
	d.mu.Lock()
	started := d.started
	d.mu.Unlock()
	if len(sim.Webhooks()) != 0 || started != 0 {
		t.Fatalf("demo started before any webhook was configured")
	}
	// The public URL may be unreachable: the listen address is used.
	d.configured("https://kitewatch.example.com/webhooks/buildkite/kwhook_aaa", "kwwhs_first", "signature")
	hooks := sim.Webhooks()
	if len(hooks) != 1 || hooks[0].URL != srv.URL+"/webhooks/buildkite/kwhook_aaa" || hooks[0].Mode != "signature" {
		t.Fatalf("registered webhooks = %+v", hooks)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("failed and passed builds delivered", func() bool {
		_, _, o := rec.snapshot()
		failed, passed := false, false
		for k := range o {
			failed = failed || strings.HasSuffix(k, "#failed")
			passed = passed || strings.HasSuffix(k, "#passed")
		}
		return failed && passed
	})

	// A rotation replaces the endpoint: later deliveries use the new secret.
	rec.mu.Lock()
	rec.secret = "kwwhs_second"
	rec.mu.Unlock()
	d.configured("http://127.0.0.1:1/webhooks/buildkite/kwhook_bbb", "kwwhs_second", "signature")
	if hooks := sim.Webhooks(); len(hooks) != 1 || !strings.HasSuffix(hooks[0].URL, "kwhook_bbb") || hooks[0].Token != "kwwhs_second" {
		t.Fatalf("after rotation, webhooks = %+v", hooks)
	}
	before, _, _ := rec.snapshot()
	waitFor("a delivery signed with the rotated secret", func() bool { n, _, _ := rec.snapshot(); return n > before })

	d.close()
	d.configured("http://127.0.0.1:1/webhooks/buildkite/kwhook_ccc", "kwwhs_third", "signature")
	if hooks := sim.Webhooks(); len(hooks) != 1 || !strings.HasSuffix(hooks[0].URL, "kwhook_bbb") {
		t.Fatalf("configured after close changed the simulator: %+v", hooks)
	}
	if strings.Contains(out.String(), "kwwhs_") {
		t.Fatalf("a webhook secret was printed: %q", out.String())
	}
	if !strings.Contains(out.String(), "starts a build every") {
		t.Fatalf("no demo message: %q", out.String())
	}
}
