package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/ingest"
	"github.com/kitewatch/kitewatch/internal/secrets"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/store/sqlite"
	"github.com/kitewatch/kitewatch/internal/tasks"
	"github.com/kitewatch/kitewatch/internal/webhook"
)

type fixture struct {
	db    *store.DB
	svc   *webhook.Service
	srv   *httptest.Server
	org   ci.Org
	now   time.Time
	setup webhook.Setup
}

func newFixture(t *testing.T, mode string) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), sqlite.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	q := tasks.New(db, slog.New(slog.DiscardHandler))
	if err := q.Init(tasks.Options{InsertOnly: true}); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, secrets.KeySize)
	rand.Read(key)
	lk, err := secrets.NewLocalKeeper(key)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secrets.NewKeyring(secrets.NamedKeeper{ID: "k1", Keeper: lk})
	if err != nil {
		t.Fatal(err)
	}
	org, err := db.CreateOrg(ctx, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, org: org, now: time.Now()}
	mux := http.NewServeMux()
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.svc = webhook.New(webhook.Options{DB: db, Keys: keys, Queue: q, Ingester: ingest.New(db, q), PublicURL: f.srv.URL,
		Now: func() time.Time { return f.now }})
	mux.Handle("POST "+webhook.PathPrefix+"{endpoint_id}", f.svc)
	f.setup, err = f.svc.Configure(ctx, org.ID, mode)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) post(t *testing.T, url string, body []byte, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (f *fixture) signed(event, reqID string, body []byte, ts time.Time) map[string]string {
	return map[string]string{"X-Buildkite-Event": event, "X-Buildkite-Request": reqID,
		"X-Buildkite-Signature": bksim.Sign(f.setup.Token, ts.Unix(), body)}
}

func buildBody(number int, state string) []byte {
	return []byte(fmt.Sprintf(`{"event":"build.%s","build":{"id":"b-%d","number":%d,"state":%q,"branch":"main",
		"commit":"abc","created_at":"2026-03-01 12:00:00 UTC","finished_at":null,"pull_request":null,
		"author":{"name":"Ann","email":"ann@acme.test"},"creator":null},
		"pipeline":{"slug":"api","name":"API","repository":"git@github.com:acme/api.git","provider":{"id":"github","settings":{"publish_commit_status":true}}},
		"sender":{"id":"u","name":"Ann"}}`, state, number, number, state))
}

func (f *fixture) deliveries(t *testing.T) (stored, tasks int) {
	t.Helper()
	if err := f.db.Writer().QueryRow(`SELECT COUNT(*) FROM webhook_deliveries`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if err := f.db.Writer().QueryRow(`SELECT COUNT(*) FROM river_job WHERE kind = 'process_webhook'`).Scan(&tasks); err != nil {
		t.Fatal(err)
	}
	return stored, tasks
}

func TestIntake(t *testing.T) {
	f := newFixture(t, "")
	if f.setup.Mode != ci.WebhookModeSignature || !strings.HasPrefix(f.setup.URL, f.srv.URL+webhook.PathPrefix) ||
		!strings.Contains(f.setup.Instructions, "X-Buildkite-Signature") {
		t.Fatalf("Setup = %+v", f.setup)
	}
	body := buildBody(7, "running")
	code, _ := f.post(t, f.setup.URL, body, f.signed("build.running", "r1", body, f.now))
	if code != http.StatusAccepted {
		t.Fatalf("valid delivery: %d", code)
	}
	if s, n := f.deliveries(t); s != 1 || n != 1 {
		t.Fatalf("after one delivery: %d stored, %d tasks", s, n)
	}

	// Duplicates: same request id, or same content under another id.
	for _, id := range []string{"r1", "r2"} {
		code, resp := f.post(t, f.setup.URL, body, f.signed("build.running", id, body, f.now))
		if code != http.StatusOK || !strings.Contains(resp, "duplicate") {
			t.Fatalf("duplicate %s: %d %s", id, code, resp)
		}
	}
	if s, n := f.deliveries(t); s != 1 || n != 1 {
		t.Fatalf("after duplicates: %d stored, %d tasks", s, n)
	}

	// Every authentication failure is the same 401, with no side effect.
	other := buildBody(8, "running")
	unknownURL := f.srv.URL + webhook.PathPrefix + "kwhook_" + strings.Repeat("a", 52)
	var first string
	for name, tc := range map[string]struct {
		url string
		hdr map[string]string
	}{
		"unknown endpoint": {unknownURL, f.signed("build.running", "x1", other, f.now)},
		"malformed id":     {f.srv.URL + webhook.PathPrefix + "nope", f.signed("build.running", "x1", other, f.now)},
		"bad signature": {f.setup.URL, map[string]string{"X-Buildkite-Event": "build.running",
			"X-Buildkite-Signature": bksim.Sign("wrong secret", f.now.Unix(), other)}},
		"replayed (stale)":        {f.setup.URL, f.signed("build.running", "x2", other, f.now.Add(-6*time.Minute))},
		"from the future":         {f.setup.URL, f.signed("build.running", "x3", other, f.now.Add(6*time.Minute))},
		"no credentials":          {f.setup.URL, map[string]string{"X-Buildkite-Event": "build.running"}},
		"token in signature mode": {f.setup.URL, map[string]string{"X-Buildkite-Event": "build.running", "X-Buildkite-Token": f.setup.Token}},
		"malformed header":        {f.setup.URL, map[string]string{"X-Buildkite-Event": "build.running", "X-Buildkite-Signature": "a,b"}},
	} {
		code, resp := f.post(t, tc.url, other, tc.hdr)
		if code != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", name, code, resp)
		}
		if first == "" {
			first = resp
		} else if resp != first {
			t.Errorf("%s: body %q differs from %q", name, resp, first)
		}
		if strings.Contains(resp, f.setup.Token) {
			t.Errorf("%s: secret echoed", name)
		}
	}
	if s, n := f.deliveries(t); s != 1 || n != 1 {
		t.Fatalf("rejected deliveries had side effects: %d stored, %d tasks", s, n)
	}

	// Oversized body: 413.
	big := append([]byte(`{"x":"`), bytes.Repeat([]byte("a"), webhook.MaxBody)...)
	big = append(big, `"}`...)
	if code, _ := f.post(t, f.setup.URL, big, f.signed("build.running", "big", big, f.now)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d", code)
	}
	// Ping is answered and not stored.
	ping := []byte(`{"event":"ping"}`)
	if code, resp := f.post(t, f.setup.URL, ping, f.signed("ping", "p1", ping, f.now)); code != 200 || !strings.Contains(resp, "pong") {
		t.Fatalf("ping: %d %s", code, resp)
	}
	if s, _ := f.deliveries(t); s != 1 {
		t.Fatalf("ping stored")
	}

	// Processing happens once.
	var id int64
	if err := f.db.Writer().QueryRow(`SELECT id FROM webhook_deliveries`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.svc.Process(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	b, err := f.db.BuildByNumber(context.Background(), f.org.ID, "api", 7)
	if err != nil {
		t.Fatal(err)
	}
	if b.State != ci.BuildRunning || b.RepoKey != "github.com/acme/api" || b.AuthorEmail != "ann@acme.test" || b.LastSource != ci.SourceWebhook {
		t.Fatalf("ingested build = %+v", b)
	}

	// Rotation: the old URL and secret stop working at once.
	old := f.setup
	f.setup, err = f.svc.Configure(context.Background(), f.org.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	nb := buildBody(9, "running")
	hdr := map[string]string{"X-Buildkite-Event": "build.running", "X-Buildkite-Signature": bksim.Sign(old.Token, f.now.Unix(), nb)}
	if code, _ := f.post(t, old.URL, nb, hdr); code != http.StatusUnauthorized {
		t.Fatalf("old endpoint after rotation: %d", code)
	}
	if code, _ := f.post(t, f.setup.URL, nb, f.signed("build.running", "n1", nb, f.now)); code != http.StatusAccepted {
		t.Fatalf("new endpoint after rotation: %d", code)
	}
	st, err := f.svc.Status(context.Background(), f.org.ID)
	if err != nil || !st.Configured || st.Deliveries24h != 2 || st.Unprocessed != 1 || st.URL != f.setup.URL {
		t.Fatalf("Status = %+v, %v", st, err)
	}
}

func TestTokenMode(t *testing.T) {
	f := newFixture(t, ci.WebhookModeToken)
	if !strings.Contains(f.setup.Instructions, "weaker") {
		t.Fatalf("token mode not marked weaker: %s", f.setup.Instructions)
	}
	body := buildBody(1, "scheduled")
	if code, _ := f.post(t, f.setup.URL, body, map[string]string{"X-Buildkite-Event": "build.scheduled", "X-Buildkite-Token": f.setup.Token}); code != http.StatusAccepted {
		t.Fatalf("token delivery: %d", code)
	}
	if code, _ := f.post(t, f.setup.URL, buildBody(2, "scheduled"), map[string]string{"X-Buildkite-Event": "build.scheduled", "X-Buildkite-Token": f.setup.Token + "x"}); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	if _, err := f.svc.Configure(context.Background(), f.org.ID, "plaintext"); err == nil {
		t.Fatal("unknown mode accepted")
	}
}

func TestParseSignature(t *testing.T) {
	sig := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		h  string
		ok bool
	}{
		{"timestamp=1642080837,signature=" + sig, true},
		{"signature=" + sig + ",timestamp=1642080837", false},
		{"timestamp=1642080837", false},
		{"a,b", false},
		{"timestamp=,signature=" + sig, false},
		{"timestamp=-5,signature=" + sig, false},
		{"timestamp=1642080837,signature=" + sig[:62], false},
		{"timestamp=1642080837,signature=" + strings.Repeat("zz", 32), false},
		{"timestamp=1642080837,signature=" + sig + ",x=y", false},
		{"timestamp=1642080837, signature=" + sig, false},
		{"", false},
	} {
		_, _, err := webhook.ParseSignature(tc.h)
		if (err == nil) != tc.ok {
			t.Errorf("ParseSignature(%q) = %v, want ok=%v", tc.h, err, tc.ok)
		}
	}
}

func TestVerifySignature(t *testing.T) {
	secret, body, ts := []byte("s3cret"), []byte(`{"event":"build.finished"}`), int64(1642080837)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("1642080837." + string(body)))
	h := "timestamp=1642080837,signature=" + hex.EncodeToString(m.Sum(nil))
	now := time.Unix(ts, 0)
	for _, tc := range []struct {
		name string
		body []byte
		now  time.Time
		want error
	}{
		{"valid", body, now, nil},
		{"valid at the window's edge", body, now.Add(webhook.ReplayWindow), nil},
		{"tampered body", append([]byte(nil), append(body, ' ')...), now, webhook.ErrSignatureMAC},
		{"replayed later", body, now.Add(webhook.ReplayWindow + time.Second), webhook.ErrSignatureStale},
	} {
		if err := webhook.VerifySignature(secret, h, tc.body, tc.now, webhook.ReplayWindow); err != tc.want {
			t.Errorf("%s: VerifySignature = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func FuzzParseSignature(f *testing.F) {
	for _, s := range []string{"timestamp=1,signature=" + strings.Repeat("0", 64), "a,b", "=,=", "timestamp=99999999999999999999,signature="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		ts, mac, err := webhook.ParseSignature(h)
		if err == nil && (len(mac) != 32 || ts < 0) {
			t.Fatalf("ParseSignature(%q) = %d, %x", h, ts, mac)
		}
	})
}

func FuzzParsePayload(f *testing.F) {
	f.Add(buildBody(1, "running"))
	f.Add([]byte(`{"build":{"number":1,"author":"a@b.c","created_at":"bad"}}`))
	f.Add([]byte(`{"build":{"number":2,"url":"https://api/v2/organizations/o/pipelines/p/builds/2"},"job":{"id":"j","retry_source":{"job_id":"i"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		u, err := webhook.ParsePayload(body)
		if err == nil && (u.Build.Number <= 0 || u.Build.Pipeline == "") {
			t.Fatalf("ParsePayload accepted %+v", u.Build)
		}
	})
}
