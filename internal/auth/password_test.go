package auth

import (
	"errors"
	"strings"
	"testing"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// cheap parameters keep tests that do not exercise DefaultParams fast under
// the race detector.
var cheap = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestValidatePassword(t *testing.T) {
	tests := []struct {
		name string
		pw   string
		code string // "" means valid
	}{
		{"empty", "", "password_too_short"},
		{"eleven", "abcdefghijk", "password_too_short"},
		{"twelve", "abcdefghijkl", ""},
		{"twelve multibyte runes", "ääääääääääää", ""},
		{"eleven multibyte runes", "äääääääääää", "password_too_short"},
		{"max bytes", strings.Repeat("a", MaxPasswordBytes), ""},
		{"over max bytes", strings.Repeat("a", MaxPasswordBytes+1), "password_too_long"},
		{"invalid utf8", "abcdefghijkl\xff", "password_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePassword(tt.pw)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("ValidatePassword: unexpected error %v", err)
				}
				return
			}
			var ce *ci.Error
			if !errors.As(err, &ce) || !errors.Is(err, ci.ErrInvalid) {
				t.Fatalf("ValidatePassword = %v, want *ci.Error of kind ErrInvalid", err)
			}
			if ce.Code != tt.code {
				t.Errorf("code = %q, want %q", ce.Code, tt.code)
			}
			if tt.pw != "" && strings.Contains(ce.Error(), tt.pw) {
				t.Errorf("error message contains the password")
			}
		})
	}
}

func TestHashPasswordRoundTrip(t *testing.T) {
	const pw = "correct horse battery staple"
	enc, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q does not use the PHC format with default params", enc)
	}
	if strings.Contains(enc, pw) {
		t.Fatal("hash contains the password")
	}
	tests := []struct {
		name string
		pw   string
		want bool
	}{
		{"right", pw, true},
		{"wrong", "correct horse battery stapl", false},
		{"case", "Correct horse battery staple", false},
		{"empty", "", false},
		{"too long", strings.Repeat("x", MaxPasswordBytes+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := CheckPassword(enc, tt.pw)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.want {
				t.Errorf("CheckPassword = %v, want %v", ok, tt.want)
			}
		})
	}
	if NeedsRehash(enc) {
		t.Error("NeedsRehash(fresh default hash) = true")
	}
	again, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if again == enc {
		t.Error("two hashes of one password are equal; salt is not random")
	}
}

func TestHashPasswordRejectsInvalid(t *testing.T) {
	if _, err := HashPassword("short"); !errors.Is(err, ci.ErrInvalid) {
		t.Fatalf("HashPassword(short) error = %v, want ErrInvalid", err)
	}
}

func TestNeedsRehash(t *testing.T) {
	pw := "a long enough password"
	old, err := hashWithParams(pw, cheap)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := CheckPassword(old, pw)
	if err != nil || !ok {
		t.Fatalf("CheckPassword(cheap hash) = %v, %v; want true, nil", ok, err)
	}
	tests := []struct {
		name    string
		encoded string
		want    bool
	}{
		{"other params", old, true},
		{"garbage", "not a hash", true},
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", true},
		{"default params", encodeHash(DefaultParams, make([]byte, 16), make([]byte, 32)), false},
		{"longer key", encodeHash(DefaultParams, make([]byte, 16), make([]byte, 64)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NeedsRehash(tt.encoded); got != tt.want {
				t.Errorf("NeedsRehash = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckPasswordMalformed(t *testing.T) {
	valid, err := hashWithParams("a long enough password", cheap)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(valid, "$")
	tests := map[string]string{
		"empty":          "",
		"argon2i":        strings.Replace(valid, "argon2id", "argon2i", 1),
		"old version":    strings.Replace(valid, "v=19", "v=16", 1),
		"missing param":  strings.Replace(valid, ",p=1", "", 1),
		"unknown param":  strings.Replace(valid, "p=1", "x=1", 1),
		"huge memory":    strings.Replace(valid, "m=64", "m=4000000000", 1),
		"zero time":      strings.Replace(valid, "t=1", "t=0", 1),
		"too many lanes": strings.Replace(valid, "p=1", "p=300", 1),
		"bad salt":       strings.Join(append(parts[:4:4], "!!!", parts[5]), "$"),
		"short key":      strings.Join(append(parts[:5:5], "AAAA"), "$"),
		"extra field":    valid + "$x",
	}
	for name, enc := range tests {
		t.Run(name, func(t *testing.T) {
			ok, err := CheckPassword(enc, "a long enough password")
			if err == nil || ok {
				t.Fatalf("CheckPassword = %v, %v; want false and an error", ok, err)
			}
			if !errors.Is(err, errMalformedHash) {
				t.Errorf("error %v does not wrap errMalformedHash", err)
			}
		})
	}
}

func TestDummyCheck(t *testing.T) {
	if DummyCheck("correct horse battery staple") {
		t.Error("DummyCheck returned true")
	}
	if DummyCheck(strings.Repeat("x", MaxPasswordBytes+1)) {
		t.Error("DummyCheck(too long) returned true")
	}
}

func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := HashPassword("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckPassword(b *testing.B) {
	enc, err := HashPassword("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := CheckPassword(enc, "wrong password here"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDummyCheck(b *testing.B) {
	for b.Loop() {
		DummyCheck("wrong password here")
	}
}
