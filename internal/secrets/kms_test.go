package secrets

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
)

// fakeDriver is an in-memory kmsDriver: a local keeper plus switches.
type fakeDriver struct {
	k       *LocalKeeper
	fail    error
	panicky bool
	closed  int
}

func (d *fakeDriver) Encrypt(ctx context.Context, p []byte) ([]byte, error) {
	if d.panicky {
		var m map[string]any
		_ = m["x"].(string) // the shape of a client panicking on a response
	}
	if d.fail != nil {
		return nil, d.fail
	}
	return d.k.Encrypt(ctx, p)
}

func (d *fakeDriver) Decrypt(ctx context.Context, c []byte) ([]byte, error) {
	if d.panicky {
		var m map[string]any
		_ = m["x"].(string)
	}
	if d.fail != nil {
		return nil, d.fail
	}
	return d.k.Decrypt(ctx, c)
}

func (d *fakeDriver) Close() error { d.closed++; return nil }

// useFakeKMS compiles scheme in for the test with an opener that hands out
// drivers keyed by the URL's key name, and counts opener calls.
func useFakeKMS(t *testing.T, scheme string) (drivers map[string]*fakeDriver, opened *int) {
	t.Helper()
	s := kmsSchemes[scheme]
	prev := s.open
	t.Cleanup(func() { s.open = prev })
	drivers = map[string]*fakeDriver{}
	opened = new(int)
	s.open = func(_ context.Context, u *url.URL) (kmsDriver, error) {
		*opened++
		name := strings.TrimPrefix(u.Host+u.Path, "/")
		d, ok := drivers[name]
		if !ok {
			key := make([]byte, KeySize)
			copy(key, name)
			lk, _ := NewLocalKeeper(key)
			d = &fakeDriver{k: lk}
			drivers[name] = d
		}
		return d, nil
	}
	return drivers, opened
}

func TestKMSKeyIDs(t *testing.T) {
	long := strings.Repeat("k", 300)
	tests := []struct{ url, want string }{
		{"awskms:///alias/kitewatch?region=eu-west-1", "awskms:alias/kitewatch"},
		{"awskms://alias/kitewatch?region=us-east-1&endpoint=http://127.0.0.1:1&profile=ops", "awskms:alias/kitewatch"},
		{"awskms:///arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab?region=eu-west-1", "awskms:arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab"},
		// The encryption context is needed to decrypt, so it is part of the id, sorted.
		{"awskms:///alias/k?context_tenant=b&region=x&context_app=kitewatch", "awskms:alias/k?context_app=kitewatch&context_tenant=b"},
		{"gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k", "gcpkms:projects/p/locations/global/keyRings/r/cryptoKeys/k"},
		{"gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k?additional_authenticated_data=YWFk", "gcpkms:projects/p/locations/global/keyRings/r/cryptoKeys/k?additional_authenticated_data=YWFk"},
		{"azurekeyvault://myvault.vault.azure.net/keys/kek/0123abcd?algorithm=RSA-OAEP-256", "azurekeyvault:myvault.vault.azure.net/keys/kek/0123abcd?algorithm=RSA-OAEP-256"},
		{"hashivault://kitewatch", "hashivault:transit/kitewatch"},
		{"hashivault://kitewatch?engine=transit", "hashivault:transit/kitewatch"},
		{"hashivault:///kitewatch?engine=kms-transit", "hashivault:kms-transit/kitewatch"},
		{"hashivault://" + long, "hashivault:sha256:"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		scheme := u.Scheme
		got := kmsKeyID(scheme, u, kmsSchemes[scheme].idParam)
		if tt.want == "hashivault:sha256:" {
			if !strings.HasPrefix(got, tt.want) || len(got) != len(tt.want)+32 {
				t.Errorf("long id = %q, want hashivault:sha256: and 32 hex digits", got)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("id of %s = %q, want %q", tt.url, got, tt.want)
		}
	}
}

func TestOpenKeeperKMSMalformedURLs(t *testing.T) {
	ctx := context.Background()
	for scheme := range kmsSchemes {
		_, opened := useFakeKMS(t, scheme)
		for _, bad := range []string{
			scheme + "://",
			scheme + ":///",
			scheme + "://%zz/key",
			scheme + "://user:SECRETPASS@host/keys/k",
			scheme + "://host/keys/k#frag",
		} {
			_, _, err := OpenKeeper(ctx, bad, "")
			if err == nil {
				t.Errorf("%s: OpenKeeper succeeded", bad)
				continue
			}
			msg := err.Error()
			if !strings.Contains(msg, scheme) || strings.Contains(msg, "SECRETPASS") {
				t.Errorf("%s: error %q must name the scheme and not echo credentials", bad, msg)
			}
		}
		if *opened != 0 {
			t.Errorf("%s: the KMS opener was called %d times for malformed URLs", scheme, *opened)
		}
	}
	for _, bad := range []string{
		"gcpkms://projects/p/locations/l/keyRings/r",
		"gcpkms://projects/p/locations/l/keyRings//cryptoKeys/k",
		"gcpkms://my-key",
		"azurekeyvault://myvault/keys/k",
		"azurekeyvault://myvault.vault.azure.net/secrets/k",
		"azurekeyvault://myvault.vault.azure.net/keys/",
	} {
		_, _, err := OpenKeeper(ctx, bad, "")
		if err == nil || !strings.Contains(err.Error(), "malformed") || !strings.Contains(err.Error(), "want ") {
			t.Errorf("%s: err = %v, want a malformed-URL error showing the expected form", bad, err)
		}
	}
}

func TestKMSKeeperThroughKeyring(t *testing.T) {
	ctx := context.Background()
	drivers, _ := useFakeKMS(t, "hashivault")
	k, id, err := OpenKeeper(ctx, "hashivault://kek-a", "")
	if err != nil {
		t.Fatal(err)
	}
	if id != "hashivault:transit/kek-a" {
		t.Fatalf("id = %q", id)
	}
	if kk, ok := k.(*KMSKeeper); !ok || kk.ID() != id {
		t.Fatalf("keeper %T, want *KMSKeeper with the same id", k)
	}
	ring, err := NewKeyring(NamedKeeper{ID: id, Keeper: k})
	if err != nil {
		t.Fatal(err)
	}
	ad := AssociatedData(1, "buildkite", "token")
	sealed, err := ring.Seal(ctx, []byte("bkua_secret"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ring.Open(ctx, sealed, ad); err != nil || string(got) != "bkua_secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	kcv, err := ring.CheckValue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.VerifyCheckValue(ctx, kcv); err != nil {
		t.Fatal(err)
	}

	// The KMS fails: errors say which scheme and operation, and wrap the cause.
	cause := errors.New("AccessDeniedException: not allowed")
	drivers["kek-a"].fail = cause
	_, err = ring.Open(ctx, sealed, ad)
	if !errors.Is(err, ErrUndecryptable) || !errors.Is(err, cause) || !strings.Contains(err.Error(), "decrypt with hashivault: AccessDenied") {
		t.Fatalf("Open with failing KMS: %v", err)
	}
	if _, err := ring.Seal(ctx, []byte("x"), ad); !errors.Is(err, cause) || !strings.Contains(err.Error(), "wrap data key with \"hashivault:transit/kek-a\": encrypt with hashivault") {
		t.Fatalf("Seal with failing KMS: %v", err)
	}
	// An unreachable KMS says nothing about the record or the key.
	down := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	drivers["kek-a"].fail = down
	_, err = ring.Open(ctx, sealed, ad)
	if !errors.Is(err, ErrKeeperUnavailable) || !errors.Is(err, down) || errors.Is(err, ErrUndecryptable) {
		t.Fatalf("Open with unreachable KMS: %v, want ErrKeeperUnavailable and not ErrUndecryptable", err)
	}
	if err := ring.VerifyCheckValue(ctx, kcv); !errors.Is(err, ErrKeeperUnavailable) || errors.Is(err, ErrWrongKey) {
		t.Fatalf("key check with unreachable KMS: %v", err)
	}
	if _, err := ring.Rewrap(ctx, sealed); err != nil {
		t.Fatalf("Rewrap of a record already under the primary key must not call the KMS: %v", err)
	}
	// A panicking client is one failed call, not a crashed server.
	drivers["kek-a"].fail, drivers["kek-a"].panicky = nil, true
	if _, err := ring.Open(ctx, sealed, ad); !errors.Is(err, ErrUndecryptable) || !strings.Contains(err.Error(), "decrypt with hashivault: unexpected response") {
		t.Fatalf("Open with panicking KMS: %v", err)
	}
	if _, err := k.Encrypt(ctx, []byte("x")); err == nil || !strings.Contains(err.Error(), "encrypt with hashivault: unexpected response") {
		t.Fatalf("Encrypt with panicking KMS: %v", err)
	}
	drivers["kek-a"].panicky = false

	// Another KMS key with the same id (its material was replaced) is refused at start.
	drivers["kek-a"].k, _ = NewLocalKeeper(make([]byte, KeySize))
	if err := ring.VerifyCheckValue(ctx, kcv); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("replaced key material: %v, want ErrWrongKey", err)
	}
	// A different KMS key is refused at start.
	other, otherID, err := OpenKeeper(ctx, "hashivault://kek-b", "")
	if err != nil {
		t.Fatal(err)
	}
	otherRing, _ := NewKeyring(NamedKeeper{ID: otherID, Keeper: other})
	if err := otherRing.VerifyCheckValue(ctx, kcv); !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), "hashivault:transit/kek-a") {
		t.Fatalf("other key: %v, want ErrWrongKey naming the stored key", err)
	}

	// Closing the keyring closes its KMS keepers; local keepers need none.
	local, localID, _ := OpenKeeper(ctx, "base64key://MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "")
	mixed, err := NewKeyring(NamedKeeper{ID: otherID, Keeper: other}, NamedKeeper{ID: localID, Keeper: local})
	if err != nil {
		t.Fatal(err)
	}
	if err := mixed.Close(); err != nil || drivers["kek-b"].closed != 1 {
		t.Fatalf("Close: %v, driver closed %d times", err, drivers["kek-b"].closed)
	}
	if err := CloseKeeper(local); err != nil {
		t.Fatal(err)
	}
}

func TestOpenKeeperKMSOpenerErrorNamesKey(t *testing.T) {
	s := kmsSchemes["awskms"]
	prev := s.open
	t.Cleanup(func() { s.open = prev })
	s.open = func(context.Context, *url.URL) (kmsDriver, error) {
		return nil, errors.New("no credentials found")
	}
	_, _, err := OpenKeeper(context.Background(), "awskms:///alias/kek?region=eu-west-1", "")
	if err == nil || err.Error() != "open key awskms:alias/kek: no credentials found" {
		t.Fatalf("err = %v", err)
	}
}
