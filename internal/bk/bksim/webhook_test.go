package bksim_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildkite/go-buildkite/v4"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
)

// The verified vector from go-buildkite's webhook_test.go (reference §10.3).
const (
	vectorToken  = "29b1ff5779c76bd48ba6705eb99ff970"
	vectorHeader = "timestamp=1642080837,signature=582d496ac2d869dd97a3101c4cda346288c49a742592daf582ec64c86449f79c"
	vectorBody   = `{"event":"ping","service":{"id":"c9f8372d-c0cd-43dc-9274-768a875cf6ca","provider":"webhook","settings":{"url":"https://server.com/webhooks"}},"organization":{"id":"49801950-1df0-474f-bb56-ad6a930c5cb9","graphql_id":"T3JnYW5pemF0aW9uLS0tZTBmMzk3MgsTksGkxOWYtZTZjNzczZTJiYjEy","url":"https://api.buildkite.com/v2/organizations/acme-inc","web_url":"https://buildkite.com/acme-inc","name":"ACME Inc","slug":"acme-inc","agents_url":"https://api.buildkite.com/v2/organizations/acme-inc/agents","emojis_url":"https://api.buildkite.com/v2/organizations/acme-inc/emojis","created_at":"2021-02-03T20:34:10.486Z","pipelines_url":"https://api.buildkite.com/v2/organizations/acme-inc/pipelines"},"sender":{"id":"c9f8372d-c0cd-43dc-9269-bcbb7f308e3f","name":"ACME Man"}}`
)

// hmacCheck verifies a signature header from scratch, without go-buildkite.
func hmacCheck(token, header string, body []byte) bool {
	ts, sig, err := bksim.ParseSignature(header)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(strings.Split(strings.Split(header, ",")[0], "=")[1] + "."))
	m.Write(body)
	_ = ts
	return hmac.Equal(m.Sum(nil), sig)
}

func TestSignatureVector(t *testing.T) {
	if got := bksim.Sign(vectorToken, 1642080837, []byte(vectorBody)); got != vectorHeader {
		t.Fatalf("Sign = %s\nwant   %s", got, vectorHeader)
	}
	if !hmacCheck(vectorToken, vectorHeader, []byte(vectorBody)) {
		t.Fatal("from-scratch HMAC check rejects the reference vector")
	}
	req := httptest.NewRequest("POST", "/", strings.NewReader(vectorBody))
	req.Header.Set("X-Buildkite-Signature", vectorHeader)
	if _, err := buildkite.ValidatePayload(req, []byte(vectorToken)); err != nil {
		t.Fatalf("go-buildkite rejects the vector: %v", err)
	}
}

type received struct {
	event, requestID string
	header           http.Header
	body             []byte
}

type receiver struct {
	mu    sync.Mutex
	got   []received
	token string
	fail  int // answer 500 to this many requests first
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.fail > 0 {
		rc.fail--
		http.Error(w, "try later", 500)
		return
	}
	// go-buildkite's ValidatePayload must accept every delivery.
	r2 := r.Clone(context.Background())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	if _, err := buildkite.ValidatePayload(r2, []byte(rc.token)); err != nil {
		http.Error(w, err.Error(), 401)
		return
	}
	rc.got = append(rc.got, received{r.Header.Get("X-Buildkite-Event"), r.Header.Get("X-Buildkite-Request"), r.Header.Clone(), body})
	w.WriteHeader(200)
}

func (rc *receiver) events() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, g := range rc.got {
		out = append(out, g.event)
	}
	return out
}

func TestWebhookDeliveries(t *testing.T) {
	for _, mode := range []string{"signature", "token"} {
		t.Run(mode, func(t *testing.T) {
			rc := &receiver{token: "0123456789abcdef0123456789abcdef", fail: 1}
			hook := httptest.NewServer(rc)
			defer hook.Close()
			h := newHarness(t, bksim.WithWebhookRetry(3, time.Millisecond))
			if _, err := h.sim.AddWebhook(bksim.WebhookConfig{URL: hook.URL, Token: rc.token, Mode: mode, Pipelines: []string{"acme/api"}}); err != nil {
				t.Fatal(err)
			}
			// A build on another pipeline is filtered out.
			if _, err := h.sim.StartBuild(bksim.StartSpec{Pipeline: "acme/web"}); err != nil {
				t.Fatal(err)
			}
			ref, err := h.sim.StartBuild(bksim.StartSpec{Pipeline: "acme/api", Outcome: "failed"})
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := h.sim.AdvanceBuild(ref.ID); got.State != "running" {
				t.Fatalf("after one step: %s", got.State)
			}
			if got, _ := h.sim.FinishBuild(ref.ID, ""); got.State != "failed" {
				t.Fatalf("finished as %s", got.State)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := h.sim.WaitWebhooks(ctx); err != nil {
				t.Fatal(err)
			}
			want := []string{"build.scheduled", "job.scheduled", "build.running", "job.started", "job.finished", "build.failing", "build.finished"}
			if got := rc.events(); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("events %v\nwant   %v", got, want)
			}
			for _, g := range rc.got {
				if g.header.Get("User-Agent") != "Buildkite-Request" || g.requestID == "" {
					t.Errorf("headers %v", g.header)
				}
				if mode == "signature" && !hmacCheck(rc.token, g.header.Get("X-Buildkite-Signature"), g.body) {
					t.Errorf("from-scratch HMAC check failed for %s", g.event)
				}
				if mode == "token" && g.header.Get("X-Buildkite-Token") != rc.token {
					t.Errorf("token header missing")
				}
				ev, err := buildkite.ParseWebHook(g.event, g.body)
				if err != nil {
					t.Fatalf("ParseWebHook(%s): %v", g.event, err)
				}
				if fin, ok := ev.(*buildkite.BuildFinishedEvent); ok {
					if fin.Build.State != "failed" || fin.Build.FinishedAt == nil || len(fin.Build.Jobs) != 0 || fin.Pipeline.Slug != "api" {
						t.Errorf("build.finished payload %+v", fin.Build)
					}
					if !bytes.Contains(g.body, []byte(` UTC"`)) {
						t.Error("webhook timestamps not in the 2006-01-02 15:04:05 UTC form")
					}
				}
			}
			// The first attempt got a 500 and was retried.
			ds := h.sim.Deliveries()
			if ds[0].Status != 500 || ds[1].Attempt != 2 || ds[1].Status != 200 {
				t.Fatalf("deliveries %+v", ds[:2])
			}
		})
	}
}

func TestWebhookMisbehaviour(t *testing.T) {
	rc := &receiver{token: "secret-secret"}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	h := newHarness(t)
	id, _ := h.sim.AddWebhook(bksim.WebhookConfig{URL: hook.URL, Token: rc.token, Events: []string{"build.running", "build.finished"}, Reorder: true, Duplicate: true})
	ref, _ := h.sim.StartBuild(bksim.StartSpec{Pipeline: "acme/api"})
	// FinishBuild emits both events under one lock, so both are queued
	// together and Reorder swaps them deterministically.
	h.sim.FinishBuild(ref.ID, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.sim.WaitWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rc.events(), ","); got != "build.finished,build.finished,build.running,build.running" {
		t.Fatalf("reorder+duplicate delivered %s", got)
	}
	_ = h.sim.UpdateWebhook(bksim.WebhookConfig{ID: id, URL: hook.URL, Token: rc.token, Drop: true})
	before := len(rc.events())
	_ = h.sim.PingWebhook(id)
	_ = h.sim.WaitWebhooks(ctx)
	if len(rc.events()) != before {
		t.Fatal("drop switch delivered anyway")
	}
	ds := h.sim.Deliveries()
	if !ds[len(ds)-1].Dropped {
		t.Fatalf("last delivery not marked dropped: %+v", ds[len(ds)-1])
	}
}
