package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/config"
	"github.com/kitewatch/kitewatch/internal/secrets"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/store/sqlite"
)

func keyURL(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return "base64key://" + base64.StdEncoding.EncodeToString(k)
}

// crashingKeeper stops working after n encryptions, like a process killed
// halfway through a rotation.
type crashingKeeper struct {
	secrets.Keeper
	left atomic.Int64
}

func (k *crashingKeeper) Encrypt(ctx context.Context, p []byte) ([]byte, error) {
	if k.left.Add(-1) < 0 {
		return nil, errors.New("killed")
	}
	return k.Keeper.Encrypt(ctx, p)
}

func TestKeysRotateResumesAndRetiresOldKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	oldURL, newURL := keyURL(t), keyURL(t)
	c := config.Default()
	c.DataDir, c.KeyURL = dir, oldURL
	db, err := sqlite.Open(ctx, filepath.Join(dir, sqlite.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	oldRing, err := openKeyring(ctx, c, db)
	if err != nil {
		t.Fatal(err)
	}
	const n = 25
	plain := seedSealedTokens(t, db, oldRing, n)

	// A rotation that dies after 10 records.
	next := c
	next.KeyURL, next.PreviousKeyURLs = newURL, []string{oldURL}
	newKeeper, newID, err := secrets.OpenKeeper(ctx, newURL, dir)
	if err != nil {
		t.Fatal(err)
	}
	oldKeeper, oldID, _ := secrets.OpenKeeper(ctx, oldURL, dir)
	ck := &crashingKeeper{Keeper: newKeeper}
	ck.left.Store(10)
	crashRing, err := secrets.NewKeyring(secrets.NamedKeeper{ID: newID, Keeper: ck}, secrets.NamedKeeper{ID: oldID, Keeper: oldKeeper})
	if err != nil {
		t.Fatal(err)
	}
	done, err := RewrapAll(ctx, db, crashRing, 4)
	if err == nil || done != 10 {
		t.Fatalf("crashing rotation: done %d, err %v; want 10 and an error", done, err)
	}
	left, _ := db.IntegrationsToRewrap(ctx, newID, 100)
	if len(left) != n-10 {
		t.Fatalf("%d records left after the crash, want %d", len(left), n-10)
	}

	// The command resumes and finishes; the check value moves to the new key.
	var out, errb bytes.Buffer
	code := Main(ctx, []string{"keys", "rotate", "--data-dir", dir, "--key-url", oldURL, "--new-key-url", newURL},
		strings.NewReader(""), &out, &errb)
	if code != 0 {
		t.Fatalf("keys rotate: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("re-wrapped %d secrets", n-10)) {
		t.Fatalf("keys rotate output: %s", out.String())
	}

	// Only the new key is needed now; the old key is refused.
	onlyNew := c
	onlyNew.KeyURL = newURL
	newRing, err := openKeyring(ctx, onlyNew, db)
	if err != nil {
		t.Fatalf("opening with only the new key: %v", err)
	}
	list, _ := db.ListIntegrations(ctx, "buildkite")
	for _, in := range list {
		got, err := newRing.Open(ctx, in.TokenSealed, secrets.AssociatedData(in.OrgID, "buildkite", "token"))
		if err != nil || string(got) != plain[in.OrgID] {
			t.Fatalf("org %d unreadable under the new key: %v", in.OrgID, err)
		}
	}
	if _, err := openKeyring(ctx, c, db); !errors.Is(err, secrets.ErrWrongKey) {
		t.Fatalf("starting with the retired key: err = %v, want ErrWrongKey", err)
	}
}

func TestWrongKeyRefusedAtStartup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := config.Default()
	c.DataDir = dir
	db, err := sqlite.Open(ctx, filepath.Join(dir, sqlite.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := openKeyring(ctx, c, db); err != nil { // creates the key file and the check value
		t.Fatal(err)
	}
	if _, err := openKeyring(ctx, c, db); err != nil {
		t.Fatalf("same key refused: %v", err)
	}
	c.KeyURL = keyURL(t)
	if _, err := openKeyring(ctx, c, db); !errors.Is(err, secrets.ErrWrongKey) {
		t.Fatalf("wrong key: err = %v, want ErrWrongKey", err)
	}
}

// seedSealedTokens creates n organizations, each connected with a token
// sealed by ring, and returns the tokens by organization id.
func seedSealedTokens(t *testing.T, db *store.DB, ring *secrets.Keyring, n int) map[int64]string {
	t.Helper()
	ctx := context.Background()
	plain := map[int64]string{}
	for i := range n {
		o, err := db.CreateOrg(ctx, fmt.Sprintf("org-%d", i), "Org")
		if err != nil {
			t.Fatal(err)
		}
		tok := fmt.Sprintf("bkua_%040d", i)
		sealed, err := ring.Seal(ctx, []byte(tok), secrets.AssociatedData(o.ID, "buildkite", "token"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.SaveIntegration(ctx, ci.Integration{OrgID: o.ID, Kind: "buildkite", Status: ci.StatusConnected,
			TokenSealed: sealed, TokenKEKID: ring.PrimaryID(), Generation: 1}); err != nil {
			t.Fatal(err)
		}
		plain[o.ID] = tok
	}
	return plain
}
