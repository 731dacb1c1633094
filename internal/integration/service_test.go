package integration_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk"
	"github.com/kitewatch/kitewatch/internal/bk/bksim"
	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/integration"
	"github.com/kitewatch/kitewatch/internal/secrets"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/store/sqlite"
)

// clock is a settable clock shared by kitewatch and the simulator.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type env struct {
	clock *clock
	db    *store.DB
	sim   *bksim.Server
	svc   *integration.Service
	keys  *secrets.Keyring
	acme  ci.Org
	beta  ci.Org
	logs  *bytes.Buffer
}

func newKeyring(t *testing.T) *secrets.Keyring {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	k, err := secrets.NewLocalKeeper(key)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secrets.NewKeyring(secrets.NamedKeeper{ID: k.ID(), Keeper: k})
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

func setup(t *testing.T) *env {
	t.Helper()
	return setupKeys(t, newKeyring(t))
}

// setupKeys is setup with the given keyring.
func setupKeys(t *testing.T, ring *secrets.Keyring) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	clk := &clock{t: time.Now().UTC()}
	db, err := sqlite.Open(ctx, filepath.Join(dir, sqlite.FileName), store.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	sim := bksim.New(bksim.Demo(), bksim.WithClock(clk.Now), bksim.WithRateLimits(100000, 100000))
	hs := httptest.NewServer(sim)
	t.Cleanup(func() { hs.Close(); sim.Close() })
	logs := &bytes.Buffer{}
	svc := integration.New(integration.Options{DB: db, Keys: ring, BaseURL: hs.URL, HTTPClient: hs.Client(),
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	acme, _ := db.CreateOrg(ctx, "acme", "Acme")
	beta, _ := db.CreateOrg(ctx, "beta", "Beta")
	return &env{clock: clk, db: db, sim: sim, svc: svc, keys: ring, acme: acme, beta: beta, logs: logs}
}

var admin = integration.Actor{Email: "a@acme.test", ClientIP: "127.0.0.1"}

func tok(name string) secrets.Secret { return secrets.NewSecret(bksim.DemoTokenValue(name)) }

func codes(ps []bk.Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Code)
	}
	return out
}

func TestConnectHappyPath(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	st, err := e.svc.Status(ctx, e.acme)
	if err != nil || st.Status != ci.StatusNotConnected {
		t.Fatalf("initial status = %+v, %v", st, err)
	}
	st, rep, err := e.svc.Connect(ctx, e.acme, admin, tok("good"), "")
	if err != nil {
		t.Fatalf("Connect: %v (%v)", err, rep.Codes())
	}
	if st.Status != ci.StatusConnected || st.Organization == nil || st.Organization.Slug != "acme" || st.Token == nil ||
		len(st.Token.MissingScopes) != 0 || len(st.Token.Scopes) < 9 || st.LastResult != "ok" || st.ConnectedAt == nil {
		t.Fatalf("status after connect = %+v", st)
	}
	if !strings.HasPrefix(st.Token.Masked, "bkua_…") || strings.Contains(st.Token.Masked, bksim.DemoTokenValue("good")[5:20]) {
		t.Fatalf("masked token = %q", st.Token.Masked)
	}
	in, err := e.db.Integration(ctx, e.acme.ID, integration.Kind)
	if err != nil || bytes.Contains(in.TokenSealed, []byte(bksim.DemoTokenValue("good"))) || len(in.TokenSealed) == 0 {
		t.Fatalf("stored token not sealed: %v", err)
	}
	evs, _ := e.db.ListAudit(ctx, store.AuditFilter{OrgID: e.acme.ID})
	if len(evs) == 0 || evs[0].Action != "buildkite.connect" || evs[0].Outcome != ci.OutcomeSuccess {
		t.Fatalf("audit = %+v", evs)
	}
}

func TestConnectFailuresStoreNothing(t *testing.T) {
	for _, tc := range []struct {
		token, org string
		want       string
	}{
		{"missing-scopes", "", bk.CodeMissingScopes},
		{"expired", "", ""}, // a never-seen expired token is reported by what Buildkite says (401)
		{"no-org-access", "", bk.CodeNoOrganizationAccess},
		{"multi-org", "", bk.CodeOrganizationRequired},
		{"ip-restricted", "", bk.CodeIPNotAllowed},
		{"good", "not-my-org", bk.CodeNoOrganizationAccess},
	} {
		t.Run(tc.token+tc.org, func(t *testing.T) {
			e := setup(t)
			ctx := context.Background()
			_, rep, err := e.svc.Connect(ctx, e.acme, admin, tok(tc.token), tc.org)
			var ve *integration.VerificationError
			if !errors.As(err, &ve) {
				t.Fatalf("Connect err = %v, want VerificationError", err)
			}
			if tc.want != "" && !slices.Contains(rep.Codes(), tc.want) {
				t.Fatalf("codes = %v, want %s", rep.Codes(), tc.want)
			}
			for _, p := range rep.Problems {
				if p.Message == "" || p.Remedy == "" {
					t.Errorf("problem %s lacks message or remedy", p.Code)
				}
			}
			if _, err := e.db.Integration(ctx, e.acme.ID, integration.Kind); !errors.Is(err, ci.ErrNotFound) {
				t.Fatalf("a failed connect stored something: %v", err)
			}
			evs, _ := e.db.ListAudit(ctx, store.AuditFilter{OrgID: e.acme.ID})
			if len(evs) != 1 || evs[0].Outcome != ci.OutcomeFailure || evs[0].Details["problems"] == "" {
				t.Fatalf("failed attempt not audited with its codes: %+v", evs)
			}
		})
	}
}

func TestFailedConnectKeepsPreviousConnection(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	if _, _, err := e.svc.Connect(ctx, e.acme, admin, tok("good"), ""); err != nil {
		t.Fatal(err)
	}
	before, _ := e.db.Integration(ctx, e.acme.ID, integration.Kind)
	if _, _, err := e.svc.Connect(ctx, e.acme, admin, tok("missing-scopes"), ""); err == nil {
		t.Fatal("connect with missing scopes succeeded")
	}
	after, _ := e.db.Integration(ctx, e.acme.ID, integration.Kind)
	if !bytes.Equal(before.TokenSealed, after.TokenSealed) || after.Status != ci.StatusConnected {
		t.Fatal("a failed connect changed the existing connection")
	}
}

func TestRecheckMovesToNeedsAttentionAndBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(s *bksim.Server) error
		want   string
		fix    func(s *bksim.Server) error
	}{
		{"revoked", func(s *bksim.Server) error { return s.RevokeToken("good") }, bk.CodeTokenRevoked, nil},
		{"scope lost", func(s *bksim.Server) error {
			return s.SetTokenScopes("good", []string{"read_teams", "read_artifacts", "read_builds", "read_job_env", "read_organizations", "read_pipelines", "read_user", "read_suites"})
		}, bk.CodeMissingScopes, func(s *bksim.Server) error { return s.SetTokenScopes("good", bksim.ReadScopes) }},
		{"org access lost", func(s *bksim.Server) error { return s.RevokeOrg("good", "acme") }, bk.CodeNoOrganizationAccess,
			func(s *bksim.Server) error { return s.GrantOrg("good", "acme") }},
		{"expired", nil, bk.CodeTokenExpired, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			ctx := context.Background()
			if _, _, err := e.svc.Connect(ctx, e.acme, admin, tok("good"), ""); err != nil {
				t.Fatal(err)
			}
			if tc.break_ == nil {
				e.clock.Add(91 * 24 * time.Hour) // past the good token's 90-day expiry
			} else if err := tc.break_(e.sim); err != nil {
				t.Fatal(err)
			}
			if err := e.svc.RecheckAll(ctx); err != nil {
				t.Fatal(err)
			}
			st, _ := e.svc.Status(ctx, e.acme)
			if st.Status != ci.StatusNeedsAttention || !slices.Contains(codes(st.Problems), tc.want) {
				t.Fatalf("after %s: status %s problems %v, want needs_attention with %s", tc.name, st.Status, codes(st.Problems), tc.want)
			}
			if len(st.History) == 0 || st.History[0].OK || st.History[0].Trigger != integration.TriggerRecheck {
				t.Fatalf("history = %+v", st.History)
			}
			evs, _ := e.db.ListAudit(ctx, store.AuditFilter{OrgID: e.acme.ID, Action: "buildkite.verify"})
			if len(evs) != 1 || evs[0].Details["status"] != ci.StatusNeedsAttention {
				t.Fatalf("status change not audited: %+v", evs)
			}
			if tc.fix == nil {
				return
			}
			if err := tc.fix(e.sim); err != nil {
				t.Fatal(err)
			}
			st, err := e.svc.Recheck(ctx, e.acme, admin, integration.TriggerManual)
			if err != nil || st.Status != ci.StatusConnected {
				t.Fatalf("after fixing: %s %v %v", st.Status, codes(st.Problems), err)
			}
		})
	}
}

// TestRotateUnderConcurrentUse rotates the token while goroutines keep using
// the integration's client; the simulator's request log must show the old
// token never sent after the swap (which happens right after its revocation).
func TestRotateUnderConcurrentUse(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	if _, _, err := e.svc.Connect(ctx, e.acme, admin, tok("good"), ""); err != nil {
		t.Fatal(err)
	}
	e.sim.ResetRequests()
	var stop atomic.Bool
	var wg sync.WaitGroup
	var calls atomic.Int64
	var failures atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				c, release, err := e.svc.Client(ctx, e.acme.ID)
				if err != nil {
					failures.Add(1)
					return
				}
				if err := c.ProbeOrganization(ctx, "acme"); err != nil {
					failures.Add(1)
				}
				release()
				calls.Add(1)
			}
		}()
	}
	for calls.Load() < 20 {
		time.Sleep(5 * time.Millisecond)
	}
	st, rep, err := e.svc.Rotate(ctx, e.acme, admin, tok("expiring-soon"), true)
	if err != nil {
		t.Fatalf("Rotate: %v %v", err, rep.Codes())
	}
	for n := calls.Load(); calls.Load() < n+20; {
		time.Sleep(5 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d client calls failed during the rotation", failures.Load())
	}
	if !slices.Contains(codes(st.Problems), bk.CodeTokenExpiringSoon) {
		t.Errorf("rotated status lacks the expiring-soon warning: %v", codes(st.Problems))
	}
	reqs := e.sim.Requests()
	revokeAt := -1
	for i, r := range reqs {
		if r.Method == "DELETE" && r.Path == "/v2/access-token" {
			if revokeAt >= 0 {
				t.Fatal("more than one revocation")
			}
			if r.Token != "good" {
				t.Fatalf("revocation sent with token %q", r.Token)
			}
			revokeAt = i
		}
	}
	if revokeAt < 0 {
		t.Fatal("the previous token was not revoked")
	}
	oldBefore, newAfter := 0, 0
	for i, r := range reqs {
		switch {
		case i < revokeAt && r.Token == "good":
			oldBefore++
		case i > revokeAt && r.Token == "good":
			t.Fatalf("old token sent after the swap: %+v", r)
		case i > revokeAt && r.Token == "expiring-soon":
			newAfter++
		}
	}
	if oldBefore == 0 || newAfter == 0 {
		t.Fatalf("test did not exercise both tokens: %d old before, %d new after", oldBefore, newAfter)
	}
}

func TestDisconnectWithRevoke(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	if _, _, err := e.svc.Connect(ctx, e.acme, admin, tok("good"), ""); err != nil {
		t.Fatal(err)
	}
	e.sim.ResetRequests()
	st, err := e.svc.Disconnect(ctx, e.acme, admin, true)
	if err != nil || st.Status != ci.StatusDisconnected || st.Token != nil {
		t.Fatalf("Disconnect = %+v, %v", st, err)
	}
	n := 0
	for _, r := range e.sim.Requests() {
		if r.Method == "DELETE" && r.Path == "/v2/access-token" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("saw %d revocations, want exactly 1", n)
	}
	in, _ := e.db.Integration(ctx, e.acme.ID, integration.Kind)
	if len(in.TokenSealed) != 0 {
		t.Fatal("ciphertext not erased")
	}
	if _, _, err := e.svc.Client(ctx, e.acme.ID); err == nil {
		t.Fatal("client available after disconnect")
	}
	if _, err := e.svc.Disconnect(ctx, e.acme, admin, false); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("second disconnect: %v", err)
	}
}

// TestCopiedCiphertextFailsClosed copies acme's sealed token into beta's
// row: it must not open there, beta is marked broken, and nothing is sent
// to Buildkite with it.
func TestCopiedCiphertextFailsClosed(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	if _, _, err := e.svc.Connect(ctx, e.acme, admin, tok("good"), ""); err != nil {
		t.Fatal(err)
	}
	src, _ := e.db.Integration(ctx, e.acme.ID, integration.Kind)
	dst := src
	dst.ID, dst.OrgID = 0, e.beta.ID
	if _, err := e.db.SaveIntegration(ctx, dst); err != nil {
		t.Fatal(err)
	}
	e.sim.ResetRequests()
	if _, _, err := e.svc.Client(ctx, e.beta.ID); err == nil {
		t.Fatal("copied ciphertext opened in another organization")
	}
	st, err := e.svc.Recheck(ctx, e.beta, admin, integration.TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != ci.StatusNeedsAttention || !slices.Contains(codes(st.Problems), integration.CodeUndecryptable) {
		t.Fatalf("beta status = %s %v", st.Status, codes(st.Problems))
	}
	if reqs := e.sim.Requests(); len(reqs) != 0 {
		t.Fatalf("requests were sent with the copied token: %+v", reqs)
	}
	// acme itself is unaffected.
	if c, release, err := e.svc.Client(ctx, e.acme.ID); err != nil {
		t.Fatal(err)
	} else {
		release()
		_ = c
	}
}

func TestConnectAttemptsAreRateLimited(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	var limited error
	for range 15 {
		if _, _, err := e.svc.Connect(ctx, e.acme, admin, secrets.NewSecret("bkua_"+strings.Repeat("0", 40)), ""); errors.Is(err, ci.ErrRateLimited) {
			limited = err
			break
		}
	}
	if limited == nil {
		t.Fatal("15 connect attempts in a row were all allowed")
	}
	// Another organization is not affected.
	if _, _, err := e.svc.Connect(ctx, e.beta, admin, tok("good"), ""); err != nil && errors.Is(err, ci.ErrRateLimited) {
		t.Fatal("rate limit leaked across organizations")
	}
}

func TestNoTokenInLogsOrErrors(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	var errs []string
	for _, name := range []string{"missing-scopes", "expired", "ip-restricted", "good"} {
		_, _, err := e.svc.Connect(ctx, e.acme, admin, tok(name), "")
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	_ = e.sim.RevokeToken("good")
	_, _ = e.svc.Recheck(ctx, e.acme, admin, integration.TriggerManual)
	st, _ := e.svc.Status(ctx, e.acme)
	for _, p := range st.Problems {
		errs = append(errs, p.Message, p.Remedy)
	}
	all := e.logs.String() + strings.Join(errs, "\n")
	for _, name := range []string{"missing-scopes", "expired", "ip-restricted", "good"} {
		if strings.Contains(all, bksim.DemoTokenValue(name)) {
			t.Errorf("token %s leaked into logs or errors", name)
		}
	}
}

// TestConnectRefusesPathShapedOrganization checks that a Buildkite
// organization that could change the API path is refused as invalid input
// before anything is sent to Buildkite, and that nothing is stored.
func TestConnectRefusesPathShapedOrganization(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	for _, org := range []string{"acme/../../user", "..", "acme?x=1", "acme#", "acme%2F..", "acme/pipelines", "ac me",
		strings.Repeat("a", 101)} {
		before := len(e.sim.Requests())
		_, _, err := e.svc.Connect(ctx, e.acme, admin, tok("good"), org)
		var ce *ci.Error
		if !errors.Is(err, ci.ErrInvalid) || !errors.As(err, &ce) || ce.Code != "invalid_organization" {
			t.Fatalf("Connect(%q) err = %v, want invalid_organization", org, err)
		}
		if n := len(e.sim.Requests()) - before; n != 0 {
			t.Fatalf("Connect(%q) sent %d requests to Buildkite", org, n)
		}
	}
	if _, err := e.db.Integration(ctx, e.acme.ID, integration.Kind); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("a refused connect stored something: %v", err)
	}
	// Slugs as Buildkite writes them still connect.
	if _, _, err := e.svc.Connect(ctx, e.acme, admin, tok("good"), " acme "); err != nil {
		t.Fatalf("Connect(acme): %v", err)
	}
}

// flakyKeeper is a local key behind a key service that can stop answering.
type flakyKeeper struct {
	*secrets.LocalKeeper
	down atomic.Bool
}

func (k *flakyKeeper) Decrypt(ctx context.Context, c []byte) ([]byte, error) {
	if k.down.Load() {
		return nil, fmt.Errorf("decrypt with testkms: connection refused: %w", secrets.ErrKeeperUnavailable)
	}
	return k.LocalKeeper.Decrypt(ctx, c)
}

// TestKeyServiceOutageChangesNothing checks that a key service that does
// not answer leaves a connected integration connected (it says nothing
// about the record) and that a manual check reports the outage.
func TestKeyServiceOutageChangesNothing(t *testing.T) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	lk, err := secrets.NewLocalKeeper(key)
	if err != nil {
		t.Fatal(err)
	}
	fk := &flakyKeeper{LocalKeeper: lk}
	ring, err := secrets.NewKeyring(secrets.NamedKeeper{ID: lk.ID(), Keeper: fk})
	if err != nil {
		t.Fatal(err)
	}
	e := setupKeys(t, ring)
	ctx := context.Background()
	if _, _, err := e.svc.Connect(ctx, e.acme, admin, tok("good"), ""); err != nil {
		t.Fatal(err)
	}
	fk.down.Store(true)
	e.sim.ResetRequests()
	if _, _, err := e.svc.Client(ctx, e.acme.ID); !errors.Is(err, ci.ErrUnavailable) {
		t.Fatalf("Client during the outage: %v, want ErrUnavailable", err)
	}
	st, err := e.svc.Recheck(ctx, e.acme, admin, integration.TriggerManual)
	var ce *ci.Error
	if !errors.As(err, &ce) || ce.Code != integration.CodeKeyServiceUnavailable {
		t.Fatalf("Recheck during the outage: %v", err)
	}
	if st.Status != ci.StatusConnected || slices.Contains(codes(st.Problems), integration.CodeUndecryptable) {
		t.Fatalf("status during the outage = %s %v, want connected", st.Status, codes(st.Problems))
	}
	if reqs := e.sim.Requests(); len(reqs) != 0 {
		t.Fatalf("requests sent during the outage: %+v", reqs)
	}
	fk.down.Store(false)
	if st, err := e.svc.Recheck(ctx, e.acme, admin, integration.TriggerManual); err != nil || st.Status != ci.StatusConnected {
		t.Fatalf("after the outage: %s, %v", st.Status, err)
	}
}

// TestRotateGivesUpOnAStuckRequest holds a client (an in-flight request
// that never ends): the rotation fails with a retryable error and changes
// nothing, and polling and analysis can take clients again at once.
func TestRotateGivesUpOnAStuckRequest(t *testing.T) {
	e := setup(t)
	e.svc = integration.New(integration.Options{DB: e.db, Keys: e.keys, BaseURL: e.svc.BaseURL(), HTTPClient: http.DefaultClient,
		LockWait: 50 * time.Millisecond})
	ctx := context.Background()
	if _, _, err := e.svc.Connect(ctx, e.acme, admin, tok("good"), ""); err != nil {
		t.Fatal(err)
	}
	_, release, err := e.svc.Client(ctx, e.acme.ID)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := e.db.Integration(ctx, e.acme.ID, integration.Kind)
	_, _, err = e.svc.Rotate(ctx, e.acme, admin, tok("expiring-soon"), false)
	var ce *ci.Error
	if !errors.As(err, &ce) || ce.Code != "integration_busy" || !errors.Is(err, ci.ErrUnavailable) {
		t.Fatalf("Rotate with a request in flight: %v", err)
	}
	after, _ := e.db.Integration(ctx, e.acme.ID, integration.Kind)
	if !bytes.Equal(before.TokenSealed, after.TokenSealed) {
		t.Fatal("the stored token changed although the rotation gave up")
	}
	_, release2, err := e.svc.Client(ctx, e.acme.ID)
	if err != nil {
		t.Fatalf("a client after the abandoned rotation: %v", err)
	}
	release2()
	release()
	if _, _, err := e.svc.Rotate(ctx, e.acme, admin, tok("expiring-soon"), false); err != nil {
		t.Fatalf("Rotate once the request finished: %v", err)
	}
}
