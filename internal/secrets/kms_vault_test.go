//go:build kms_vault || kms_all

package secrets_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kitewatch/kitewatch/internal/secrets"
	"github.com/kitewatch/kitewatch/internal/secrets/kmstest"
)

const vaultToken = "hvs.TESTTOKEN-must-not-leak"

// useFakeVault points the hashivault keeper at a fake Vault with a transit
// key "kitewatch" on the "transit" mount.
func useFakeVault(t *testing.T) *kmstest.Vault {
	v := kmstest.NewVault(t, vaultToken)
	v.SetKey("transit", "kitewatch")
	t.Setenv("VAULT_ADDR", "")
	t.Setenv("VAULT_TOKEN", "")
	t.Setenv("VAULT_SERVER_URL", v.URL)
	t.Setenv("VAULT_SERVER_TOKEN", vaultToken)
	t.Setenv("VAULT_MAX_RETRIES", "0") // the client would retry a 5xx with a wait
	return v
}

func TestVaultKeeperRoundTrip(t *testing.T) {
	ctx := context.Background()
	v := useFakeVault(t)
	k, id, err := secrets.OpenKeeper(ctx, "hashivault://kitewatch", "")
	if err != nil {
		t.Fatal(err)
	}
	defer secrets.CloseKeeper(k)
	if id != "hashivault:transit/kitewatch" {
		t.Fatalf("id = %q", id)
	}
	ring, err := secrets.NewKeyring(secrets.NamedKeeper{ID: id, Keeper: k})
	if err != nil {
		t.Fatal(err)
	}
	ad := secrets.AssociatedData(7, "buildkite", "token")
	sealed, err := ring.Seal(ctx, []byte("bkua_vault_secret"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := secrets.KEKID(sealed); got != id {
		t.Fatalf("record key id %q, want %q", got, id)
	}
	if got, err := ring.Open(ctx, sealed, ad); err != nil || string(got) != "bkua_vault_secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if v.Requests() < 2 {
		t.Fatalf("the fake Vault saw %d requests; the keeper did not use it", v.Requests())
	}

	// Key check at start: the same key passes; new key material under the
	// same name is refused.
	kcv, err := ring.CheckValue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(kcv, "kcv1:hashivault:transit/kitewatch:") {
		t.Fatalf("check value %q", kcv)
	}
	k2, _, err := secrets.OpenKeeper(ctx, "hashivault://kitewatch?engine=transit", "")
	if err != nil {
		t.Fatal(err)
	}
	ring2, _ := secrets.NewKeyring(secrets.NamedKeeper{ID: id, Keeper: k2})
	if err := ring2.VerifyCheckValue(ctx, kcv); err != nil {
		t.Fatalf("same key after restart: %v", err)
	}
	v.SetKey("transit", "kitewatch")
	if err := ring2.VerifyCheckValue(ctx, kcv); !errors.Is(err, secrets.ErrWrongKey) {
		t.Fatalf("replaced Vault key: %v, want ErrWrongKey", err)
	}
	_, err = ring2.Open(ctx, sealed, ad)
	if !errors.Is(err, secrets.ErrUndecryptable) || !strings.Contains(err.Error(), "decrypt with hashivault") {
		t.Fatalf("Open under replaced key: %v", err)
	}
	if strings.Contains(err.Error(), vaultToken) {
		t.Fatalf("error leaks the Vault token: %v", err)
	}
}

func TestVaultKeeperErrors(t *testing.T) {
	ctx := context.Background()
	v := useFakeVault(t)

	// A wrong token: the error names scheme and operation, never the token.
	t.Setenv("VAULT_SERVER_TOKEN", "hvs.WRONG-TOKEN-must-not-leak")
	k, _, err := secrets.OpenKeeper(ctx, "hashivault://kitewatch", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = k.Encrypt(ctx, []byte("data key"))
	if err == nil || !strings.Contains(err.Error(), "encrypt with hashivault") || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("wrong token: %v", err)
	}
	if strings.Contains(err.Error(), "WRONG-TOKEN") || strings.Contains(err.Error(), vaultToken) {
		t.Fatalf("error leaks a token: %v", err)
	}

	// An unknown transit key.
	t.Setenv("VAULT_SERVER_TOKEN", vaultToken)
	k, _, err = secrets.OpenKeeper(ctx, "hashivault://nosuchkey", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Encrypt(ctx, []byte("data key")); err == nil || !strings.Contains(err.Error(), "encryption key not found") {
		t.Fatalf("unknown key: %v", err)
	}

	// A 204 answer makes gocloud's hashivault keeper dereference a nil
	// response; that is one failed call, not a crash.
	k, _, _ = secrets.OpenKeeper(ctx, "hashivault://kitewatch", "")
	v.AnswerEmpty(true)
	if _, err := k.Decrypt(ctx, []byte("vault:v1:AAAA")); err == nil || !strings.Contains(err.Error(), "decrypt with hashivault") {
		t.Fatalf("empty answer: %v", err)
	}
	v.AnswerEmpty(false)

	// A sealed or failing Vault is unavailable, not a wrong key or a bad
	// record: the keyring does not report the record undecryptable.
	ring, _ := secrets.NewKeyring(secrets.NamedKeeper{ID: "hashivault:transit/kitewatch", Keeper: k})
	ad := secrets.AssociatedData(1, "buildkite", "token")
	sealed, err := ring.Seal(ctx, []byte("tok"), ad)
	if err != nil {
		t.Fatal(err)
	}
	kcv, _ := ring.CheckValue(ctx)
	v.FailWith(503)
	_, err = ring.Open(ctx, sealed, ad)
	if !errors.Is(err, secrets.ErrKeeperUnavailable) || errors.Is(err, secrets.ErrUndecryptable) || !strings.Contains(err.Error(), "decrypt with hashivault") {
		t.Fatalf("Open with Vault answering 503: %v, want ErrKeeperUnavailable only", err)
	}
	if err := ring.VerifyCheckValue(ctx, kcv); !errors.Is(err, secrets.ErrKeeperUnavailable) || errors.Is(err, secrets.ErrWrongKey) {
		t.Fatalf("key check with Vault answering 503: %v", err)
	}
	v.FailWith(0)
	if got, err := ring.Open(ctx, sealed, ad); err != nil || string(got) != "tok" {
		t.Fatalf("Open after Vault recovered: %q, %v", got, err)
	}

	// No server configured: a clear error at open, before any request.
	t.Setenv("VAULT_SERVER_URL", "")
	before := v.Requests()
	if _, _, err := secrets.OpenKeeper(ctx, "hashivault://kitewatch", ""); err == nil || !strings.Contains(err.Error(), "VAULT_SERVER_URL") {
		t.Fatalf("no server: %v", err)
	}
	// An unknown query parameter is refused by the opener.
	t.Setenv("VAULT_SERVER_URL", v.URL)
	if _, _, err := secrets.OpenKeeper(ctx, "hashivault://kitewatch?mount=x", ""); err == nil || !strings.Contains(err.Error(), "mount") {
		t.Fatalf("unknown parameter: %v", err)
	}
	if v.Requests() != before {
		t.Fatalf("opening made %d requests to Vault", v.Requests()-before)
	}

	// An unreachable Vault is unavailable too.
	k, _, err = secrets.OpenKeeper(ctx, "hashivault://kitewatch", "")
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	if _, err := k.Encrypt(ctx, []byte("x")); !errors.Is(err, secrets.ErrKeeperUnavailable) {
		t.Fatalf("Vault down: %v, want ErrKeeperUnavailable", err)
	}
}

// A Vault address with credentials in it, malformed or not, never reaches
// an error message: the client's URL errors repeat the whole address.
func TestVaultAddressCredentialsNotInErrors(t *testing.T) {
	ctx := context.Background()
	t.Setenv("VAULT_TOKEN", "")
	t.Setenv("VAULT_SERVER_TOKEN", vaultToken)
	for _, addr := range []string{"https://ops:PASSWORD-must-not-leak@[vault", "https://ops:PASSWORD-must-not-leak@127.0.0.1:1"} {
		t.Setenv("VAULT_SERVER_URL", addr)
		k, _, err := secrets.OpenKeeper(ctx, "hashivault://kitewatch", "")
		if err == nil {
			_, err = k.Encrypt(ctx, []byte("x"))
			_ = secrets.CloseKeeper(k)
		}
		if err == nil || strings.Contains(err.Error(), "PASSWORD-must-not-leak") || strings.Contains(err.Error(), vaultToken) {
			t.Fatalf("VAULT_SERVER_URL %q: error %v", addr, err)
		}
	}
}
