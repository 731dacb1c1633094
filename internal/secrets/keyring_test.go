package secrets

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
)

func newTestKeeper(t testing.TB) NamedKeeper {
	t.Helper()
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	k, err := NewLocalKeeper(key)
	if err != nil {
		t.Fatal(err)
	}
	return NamedKeeper{ID: k.ID(), Keeper: k}
}

func newTestKeyring(t testing.TB, primary NamedKeeper, older ...NamedKeeper) *Keyring {
	t.Helper()
	r, err := NewKeyring(primary, older...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSealOpenRoundTrip(t *testing.T) {
	ctx := context.Background()
	r := newTestKeyring(t, newTestKeeper(t))
	ad := AssociatedData(1, "buildkite", "token")
	for _, pt := range [][]byte{{}, []byte("bkua_0123456789abcdef0123456789abcdef01234567"), bytes.Repeat([]byte{0xff}, 10000)} {
		sealed, err := r.Seal(ctx, pt, ad)
		if err != nil {
			t.Fatal(err)
		}
		if len(pt) > 8 && bytes.Contains(sealed, pt[:8]) {
			t.Fatal("sealed record contains plaintext")
		}
		got, err := r.Open(ctx, sealed, ad)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("Open = %q, want %q", got, pt)
		}
		id, err := KEKID(sealed)
		if err != nil || id != r.PrimaryID() {
			t.Fatalf("KEKID = %q, %v; want %q", id, err, r.PrimaryID())
		}
	}
	// Two seals of the same plaintext differ (fresh data key and nonce).
	a, _ := r.Seal(ctx, []byte("x"), ad)
	b, _ := r.Seal(ctx, []byte("x"), ad)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are identical")
	}
}

func TestOpenRefusesOtherAssociatedData(t *testing.T) {
	ctx := context.Background()
	r := newTestKeyring(t, newTestKeeper(t))
	sealed, err := r.Seal(ctx, []byte("secret"), AssociatedData(1, "buildkite", "token"))
	if err != nil {
		t.Fatal(err)
	}
	for name, ad := range map[string][]byte{
		"other org":         AssociatedData(2, "buildkite", "token"),
		"other integration": AssociatedData(1, "github", "token"),
		"other field":       AssociatedData(1, "buildkite", "pending_token"),
		"none":              nil,
	} {
		t.Run(name, func(t *testing.T) {
			pt, err := r.Open(ctx, sealed, ad)
			if !errors.Is(err, ErrUndecryptable) || pt != nil {
				t.Fatalf("Open = %q, %v; want ErrUndecryptable", pt, err)
			}
			var ue *UndecryptableError
			if !errors.As(err, &ue) || ue.Reason != ReasonAuth {
				t.Fatalf("error %v, want reason %q", err, ReasonAuth)
			}
		})
	}
}

func TestAssociatedDataIsUnambiguous(t *testing.T) {
	a := AssociatedData(1, "ab", "c")
	b := AssociatedData(1, "a", "bc")
	if bytes.Equal(a, b) {
		t.Fatal("different triples encode alike")
	}
}

func TestOpenRefusesTampering(t *testing.T) {
	ctx := context.Background()
	r := newTestKeyring(t, newTestKeeper(t))
	ad := AssociatedData(7, "buildkite", "token")
	sealed, err := r.Seal(ctx, []byte("secret value"), ad)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		mod := bytes.Clone(sealed)
		mod[i] ^= 0x01
		pt, err := r.Open(ctx, mod, ad)
		if !errors.Is(err, ErrUndecryptable) || pt != nil {
			t.Fatalf("flipping byte %d: Open = %q, %v; want ErrUndecryptable", i, pt, err)
		}
	}
	for n := 0; n < len(sealed); n++ {
		if _, err := r.Open(ctx, sealed[:n], ad); !errors.Is(err, ErrUndecryptable) {
			t.Fatalf("truncated to %d: err = %v, want ErrUndecryptable", n, err)
		}
	}
	if _, err := r.Open(ctx, append(bytes.Clone(sealed), 0), ad); !errors.Is(err, ErrUndecryptable) {
		t.Fatalf("extended: err = %v, want ErrUndecryptable", err)
	}
}

func TestOpenRefusesWrongKey(t *testing.T) {
	ctx := context.Background()
	k1, k2 := newTestKeeper(t), newTestKeeper(t)
	ad := AssociatedData(1, "buildkite", "token")
	sealed, err := newTestKeyring(t, k1).Seal(ctx, []byte("secret"), ad)
	if err != nil {
		t.Fatal(err)
	}

	// A keyring without k1 does not know the record's key id.
	_, err = newTestKeyring(t, k2).Open(ctx, sealed, ad)
	var ue *UndecryptableError
	if !errors.As(err, &ue) || ue.Reason != ReasonUnknownKEK || ue.KEKID != k1.ID {
		t.Fatalf("Open with other key: %v; want unknown_kek %q", err, k1.ID)
	}

	// A different key registered under k1's id fails to unwrap.
	impostor := newTestKeyring(t, NamedKeeper{ID: k1.ID, Keeper: k2.Keeper})
	_, err = impostor.Open(ctx, sealed, ad)
	if !errors.As(err, &ue) || ue.Reason != ReasonUnwrap {
		t.Fatalf("Open with impostor key: %v; want unwrap failure", err)
	}
}

func TestRewrapThenOpenWithOnlyNewKey(t *testing.T) {
	ctx := context.Background()
	oldK, newK := newTestKeeper(t), newTestKeeper(t)
	ad := AssociatedData(3, "buildkite", "token")
	sealed, err := newTestKeyring(t, oldK).Seal(ctx, []byte("token-value"), ad)
	if err != nil {
		t.Fatal(err)
	}

	rotating := newTestKeyring(t, newK, oldK)
	if !rotating.NeedsRewrap(sealed) {
		t.Fatal("NeedsRewrap = false for a record under the old key")
	}
	rewrapped, err := rotating.Rewrap(ctx, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if rotating.NeedsRewrap(rewrapped) {
		t.Fatal("NeedsRewrap = true after Rewrap")
	}
	// The ciphertext (nonce and sealed data) is untouched.
	oldRec, _ := parseRecord(sealed)
	newRec, _ := parseRecord(rewrapped)
	if !bytes.Equal(oldRec.nonce, newRec.nonce) || !bytes.Equal(oldRec.ciphertext, newRec.ciphertext) {
		t.Fatal("Rewrap changed the ciphertext")
	}
	// Rewrapping again is a no-op.
	again, err := rotating.Rewrap(ctx, rewrapped)
	if err != nil || !bytes.Equal(again, rewrapped) {
		t.Fatalf("second Rewrap changed the record (err %v)", err)
	}

	onlyNew := newTestKeyring(t, newK)
	got, err := onlyNew.Open(ctx, rewrapped, ad)
	if err != nil || string(got) != "token-value" {
		t.Fatalf("Open with only the new key = %q, %v", got, err)
	}
	if _, err := onlyNew.Open(ctx, sealed, ad); !errors.Is(err, ErrUndecryptable) {
		t.Fatalf("old record opened without the old key: %v", err)
	}
	if _, err := onlyNew.Rewrap(ctx, sealed); !errors.Is(err, ErrUndecryptable) {
		t.Fatalf("Rewrap without the old key: %v, want ErrUndecryptable", err)
	}
	if _, err := onlyNew.Rewrap(ctx, []byte{9, 9}); !errors.Is(err, ErrUndecryptable) {
		t.Fatalf("Rewrap of garbage: %v, want ErrUndecryptable", err)
	}
}

func TestCheckValue(t *testing.T) {
	ctx := context.Background()
	k1, k2 := newTestKeeper(t), newTestKeeper(t)
	r1 := newTestKeyring(t, k1)
	kcv, err := r1.CheckValue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r1.VerifyCheckValue(ctx, kcv); err != nil {
		t.Fatalf("VerifyCheckValue with the same key: %v", err)
	}
	if err := newTestKeyring(t, k2, k1).VerifyCheckValue(ctx, kcv); err != nil {
		t.Fatalf("VerifyCheckValue with the key as an older key: %v", err)
	}
	tests := map[string]struct {
		ring   *Keyring
		stored string
	}{
		"other key":          {newTestKeyring(t, k2), kcv},
		"same id, other key": {newTestKeyring(t, NamedKeeper{ID: k1.ID, Keeper: k2.Keeper}), kcv},
		"garbage":            {r1, "nonsense"},
		"bad base64":         {r1, "kcv1:" + k1.ID + ":!!!"},
		"empty":              {r1, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := tc.ring.VerifyCheckValue(ctx, tc.stored); !errors.Is(err, ErrWrongKey) {
				t.Fatalf("VerifyCheckValue = %v, want ErrWrongKey", err)
			}
		})
	}
}

func TestNewKeyringValidates(t *testing.T) {
	k := newTestKeeper(t)
	for name, args := range map[string][]NamedKeeper{
		"empty id":    {{ID: "", Keeper: k.Keeper}},
		"nil keeper":  {{ID: "x"}},
		"duplicate":   {k, k},
		"id too long": {{ID: string(bytes.Repeat([]byte("a"), 256)), Keeper: k.Keeper}},
	} {
		if _, err := NewKeyring(args[0], args[1:]...); err == nil {
			t.Errorf("%s: NewKeyring succeeded", name)
		}
	}
}

func FuzzOpen(f *testing.F) {
	ctx := context.Background()
	k := newTestKeeper(f)
	r := newTestKeyring(f, k)
	ad := AssociatedData(1, "buildkite", "token")
	good, err := r.Seal(ctx, []byte("secret"), ad)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{1, 0})
	f.Add(append([]byte{1, byte(len(k.ID))}, k.ID...))
	f.Fuzz(func(t *testing.T, rec []byte) {
		pt, err := r.Open(ctx, rec, ad)
		if bytes.Equal(rec, good) {
			if err != nil || string(pt) != "secret" {
				t.Fatalf("good record: %q, %v", pt, err)
			}
			return
		}
		if err == nil {
			// Only a genuine record may open; AES-GCM forgery is infeasible.
			t.Fatalf("random record opened to %q", pt)
		}
		if !errors.Is(err, ErrUndecryptable) {
			t.Fatalf("error %v does not match ErrUndecryptable", err)
		}
		_ = r.NeedsRewrap(rec)
		if _, err := r.Rewrap(ctx, rec); err != nil && !errors.Is(err, ErrUndecryptable) {
			t.Fatalf("Rewrap error %v does not match ErrUndecryptable", err)
		}
	})
}
