package auth

import (
	"bytes"
	"crypto/sha256"
	"regexp"
	"strings"
	"testing"
)

func TestNewTokenFormat(t *testing.T) {
	for _, prefix := range []string{PrefixAPIToken, PrefixSession, PrefixSetup} {
		t.Run(prefix, func(t *testing.T) {
			re := regexp.MustCompile(`^` + prefix + `_[a-z2-7]{52}$`)
			seen := make(map[string]bool)
			for range 200 {
				plain, hash, err := NewToken(prefix)
				if err != nil {
					t.Fatal(err)
				}
				if !re.MatchString(plain) {
					t.Fatalf("token %q does not match %v", plain, re)
				}
				if seen[plain] {
					t.Fatalf("duplicate token %q", plain)
				}
				seen[plain] = true
				want := sha256.Sum256([]byte(plain))
				if !bytes.Equal(hash, want[:]) || !bytes.Equal(HashToken(plain), hash) {
					t.Fatal("hash is not SHA-256 of the token")
				}
				if !LooksLikeToken(prefix, plain) {
					t.Fatalf("LooksLikeToken(%q, own token) = false", prefix)
				}
			}
		})
	}
}

func TestNewTokenBadPrefix(t *testing.T) {
	for _, p := range []string{"", "KW", "kw_", "k w", strings.Repeat("a", 17)} {
		if _, _, err := NewToken(p); err == nil {
			t.Errorf("NewToken(%q) succeeded", p)
		}
	}
}

func TestLooksLikeAPIToken(t *testing.T) {
	api, _, _ := NewToken(PrefixAPIToken)
	session, _, _ := NewToken(PrefixSession)
	setup, _, _ := NewToken(PrefixSetup)
	random := api[len("kw_"):]
	tests := []struct {
		name string
		s    string
		want bool
	}{
		{"api token", api, true},
		{"session secret", session, false},
		{"setup link", setup, false},
		{"no prefix", random, false},
		{"upper case", "kw_" + strings.ToUpper(random), false},
		{"short", api[:len(api)-1], false},
		{"long", api + "a", false},
		{"bad charset", "kw_" + random[:51] + "1", false},
		{"non-canonical last char", "kw_" + random[:51] + "b", false},
		{"whitespace", " " + api, false},
		{"empty", "", false},
		{"bearer", "Bearer " + api, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LooksLikeAPIToken(tt.s); got != tt.want {
				t.Errorf("LooksLikeAPIToken(%q) = %v, want %v", tt.s, got, tt.want)
			}
		})
	}
}

func TestTokenHint(t *testing.T) {
	for _, prefix := range []string{PrefixAPIToken, PrefixSession, PrefixSetup} {
		for range 50 {
			plain, _, err := NewToken(prefix)
			if err != nil {
				t.Fatal(err)
			}
			hint := TokenHint(plain)
			want := prefix + "_…" + plain[len(plain)-4:]
			if hint != want {
				t.Fatalf("TokenHint = %q, want %q", hint, want)
			}
			random := plain[len(prefix)+1:]
			// No 5 consecutive characters of the secret may appear.
			for i := 0; i+5 <= len(random); i++ {
				if strings.Contains(hint, random[i:i+5]) {
					t.Fatalf("hint %q leaks %q", hint, random[i:i+5])
				}
			}
		}
	}
	for _, s := range []string{"", "kw_short", "hunter2hunter2", "kw_" + strings.Repeat("A", 52)} {
		if got := TokenHint(s); got != "…" {
			t.Errorf("TokenHint(%q) = %q, want …", s, got)
		}
	}
}

func TestTokenHashEqual(t *testing.T) {
	a := HashToken("kw_a")
	if !TokenHashEqual(a, HashToken("kw_a")) {
		t.Error("equal hashes compare unequal")
	}
	if TokenHashEqual(a, HashToken("kw_b")) || TokenHashEqual(a, nil) {
		t.Error("different hashes compare equal")
	}
}
