//go:build kms_vault || kms_all

package cli

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kitewatch/kitewatch/internal/config"
	"github.com/kitewatch/kitewatch/internal/secrets"
	"github.com/kitewatch/kitewatch/internal/secrets/kmstest"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/store/sqlite"
)

// TestKeysRotateLocalToVaultAndBack rotates stored tokens from a local key
// to a (fake) HashiCorp Vault transit key with kitewatch keys rotate, checks
// startup accepts only the new key, and rotates back.
func TestKeysRotateLocalToVaultAndBack(t *testing.T) {
	ctx := context.Background()
	v := kmstest.NewVault(t, "hvs.test-token")
	v.SetKey("transit", "kitewatch")
	t.Setenv("VAULT_ADDR", "")
	t.Setenv("VAULT_TOKEN", "")
	t.Setenv("VAULT_SERVER_URL", v.URL)
	t.Setenv("VAULT_SERVER_TOKEN", "hvs.test-token")
	const vaultURL = "hashivault://kitewatch"

	dir := t.TempDir()
	localURL := keyURL(t)
	c := config.Default()
	c.DataDir, c.KeyURL = dir, localURL
	db, err := sqlite.Open(ctx, filepath.Join(dir, sqlite.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ring, err := openKeyring(ctx, c, db)
	if err != nil {
		t.Fatal(err)
	}
	plain := seedSealedTokens(t, db, ring, 3)
	ring.Close()

	rotate := func(from, to, wantID string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := Main(ctx, []string{"keys", "rotate", "--data-dir", dir, "--key-url", from, "--new-key-url", to},
			strings.NewReader(""), &out, &errb)
		if code != 0 {
			t.Fatalf("keys rotate to %s: exit %d: %s", wantID, code, errb.String())
		}
		if want := "re-wrapped 3 secrets under key " + wantID; !strings.Contains(out.String(), want) {
			t.Fatalf("keys rotate output %q, want %q", out.String(), want)
		}
	}
	// startsWith opens the keyring as startup does and reads every token.
	startsWith := func(keyURL string) error {
		t.Helper()
		cc := c
		cc.KeyURL = keyURL
		r, err := openKeyring(ctx, cc, db)
		if err != nil {
			return err
		}
		defer r.Close()
		list, _ := db.ListIntegrations(ctx, "buildkite")
		for _, in := range list {
			got, err := r.Open(ctx, in.TokenSealed, secrets.AssociatedData(in.OrgID, "buildkite", "token"))
			if err != nil || string(got) != plain[in.OrgID] {
				t.Fatalf("org %d unreadable with %s: %v", in.OrgID, keyURL, err)
			}
		}
		return nil
	}

	before := v.Requests()
	rotate(localURL, vaultURL, "hashivault:transit/kitewatch")
	if v.Requests() == before {
		t.Fatal("the rotation never called Vault")
	}
	if err := startsWith(vaultURL); err != nil {
		t.Fatalf("start with the Vault key: %v", err)
	}
	for _, wrong := range []string{localURL, "hashivault://other-key"} {
		if err := startsWith(wrong); !errors.Is(err, secrets.ErrWrongKey) {
			t.Fatalf("start with %s after rotating to Vault: %v, want ErrWrongKey", wrong, err)
		}
	}
	// Another key that Vault does have: refused at start too.
	v.SetKey("transit", "kitewatch-spare")
	if err := startsWith("hashivault://kitewatch-spare"); !errors.Is(err, secrets.ErrWrongKey) {
		t.Fatalf("start with another Vault key: %v", err)
	}

	rotate(vaultURL, localURL, ring.PrimaryID())
	if err := startsWith(localURL); err != nil {
		t.Fatalf("start with the local key again: %v", err)
	}
	if err := startsWith(vaultURL); !errors.Is(err, secrets.ErrWrongKey) {
		t.Fatalf("start with the retired Vault key: %v, want ErrWrongKey", err)
	}
}
