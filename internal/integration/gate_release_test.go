package integration_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/integration"
	"github.com/kitewatch/kitewatch/internal/secrets"
)

// panickyKeeper is a local keeper whose Decrypt panics while armed: a
// stand-in for a bug in a key service client.
type panickyKeeper struct {
	*secrets.LocalKeeper
	armed atomic.Bool
}

func (k *panickyKeeper) Decrypt(ctx context.Context, c []byte) ([]byte, error) {
	if k.armed.Load() {
		panic("key service client bug")
	}
	return k.LocalKeeper.Decrypt(ctx, c)
}

// recovered runs f and reports whether it panicked.
func recovered(f func()) (panicked bool) {
	defer func() { panicked = recover() != nil }()
	f()
	return false
}

// A panic while a token user holds the organization's gate (opening the
// stored token in Recheck or Client) releases the gate: a later rotation
// goes through instead of answering integration_busy for ever.
func TestPanicWhileHoldingTheGateReleasesIt(t *testing.T) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	lk, err := secrets.NewLocalKeeper(key)
	if err != nil {
		t.Fatal(err)
	}
	pk := &panickyKeeper{LocalKeeper: lk}
	ring, err := secrets.NewKeyring(secrets.NamedKeeper{ID: lk.ID(), Keeper: pk})
	if err != nil {
		t.Fatal(err)
	}
	e := setupKeys(t, ring)
	e.svc = integration.New(integration.Options{DB: e.db, Keys: ring, BaseURL: e.svc.BaseURL(), HTTPClient: http.DefaultClient,
		LockWait: 50 * time.Millisecond})
	ctx := context.Background()
	if _, _, err := e.svc.Connect(ctx, e.acme, admin, tok("good"), ""); err != nil {
		t.Fatal(err)
	}
	pk.armed.Store(true)
	if !recovered(func() { _, _ = e.svc.Recheck(ctx, e.acme, admin, integration.TriggerManual) }) {
		t.Fatal("Recheck did not reach the panicking keeper")
	}
	if !recovered(func() { _, _, _ = e.svc.Client(ctx, e.acme.ID) }) {
		t.Fatal("Client did not reach the panicking keeper")
	}
	pk.armed.Store(false)
	if _, _, err := e.svc.Rotate(ctx, e.acme, admin, tok("expiring-soon"), false); err != nil {
		t.Fatalf("Rotate after panics in token users: %v (the gate stayed held)", err)
	}
}

// The connect callback runs after the swap released the gate, so a
// callback that asks for a client (a poll started at once) gets one
// instead of waiting on the connect that called it.
func TestOnConnectedMayUseAClient(t *testing.T) {
	e := setup(t)
	var cbErr error
	called := false
	var svc *integration.Service
	svc = integration.New(integration.Options{DB: e.db, Keys: e.keys, BaseURL: e.svc.BaseURL(), HTTPClient: http.DefaultClient,
		OnConnected: func(ctx context.Context, org ci.Org) {
			called = true
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, release, err := svc.Client(cctx, org.ID)
			if err != nil {
				cbErr = err
				return
			}
			release()
		}})
	if _, _, err := svc.Connect(context.Background(), e.acme, admin, tok("good"), ""); err != nil {
		t.Fatal(err)
	}
	if !called || cbErr != nil {
		t.Fatalf("OnConnected called=%v, its client: %v", called, cbErr)
	}
}
