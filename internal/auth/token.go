package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"strings"
)

// Token prefixes. A token is "<prefix>_<random>", so "kw_" API tokens, "kws_"
// session secrets and "kwsetup_" setup links can never be mistaken for each
// other.
const (
	PrefixAPIToken = "kw"
	PrefixSession  = "kws"
	PrefixSetup    = "kwsetup"
)

// tokenRandomBytes is the entropy of every token: 256 bits.
const tokenRandomBytes = 32

// TokenRandomLen is the length of a token's random part: 32 bytes in
// unpadded base32 is 52 characters.
const TokenRandomLen = 52

// tokenEncoding is lowercase RFC 4648 base32 without padding: URL safe,
// case-insensitive friendly, and free of look-alike 0/1/8/9.
var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// maxPrefixLen bounds token prefixes; they are short fixed words.
const maxPrefixLen = 16

// NewToken returns a new random token "<prefix>_<52 base32 characters>" and
// its SHA-256 hash, which is what should be stored. The prefix must be 1 to
// 16 lowercase letters or digits. It fails only when the prefix is invalid or
// the system's random source fails.
func NewToken(prefix string) (plain string, hash []byte, err error) {
	if !validPrefix(prefix) {
		return "", nil, fmt.Errorf("new token: invalid prefix %q", prefix)
	}
	b := make([]byte, tokenRandomBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("new %s token: read random bytes: %w", prefix, err)
	}
	plain = prefix + "_" + tokenEncoding.EncodeToString(b)
	return plain, HashToken(plain), nil
}

func validPrefix(p string) bool {
	if p == "" || len(p) > maxPrefixLen {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// HashToken returns the SHA-256 digest of a token, the form tokens are stored
// and looked up in.
func HashToken(plain string) []byte {
	h := sha256.Sum256([]byte(plain))
	return h[:]
}

// TokenHashEqual compares two token hashes in constant time.
func TokenHashEqual(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}

// TokenHint returns a display hint such as "kw_…a1b2": the prefix and at most
// the last 4 characters of the random part. Input that is not a well-formed
// token yields only "…", so a mistyped secret pasted into the wrong place is
// not echoed back.
func TokenHint(plain string) string {
	prefix, random, ok := splitToken(plain)
	if !ok {
		return "…"
	}
	return prefix + "_…" + random[len(random)-4:]
}

// LooksLikeToken reports whether s has the exact shape of a token with the
// given prefix, without any lookup. Use it to reject garbage before touching
// the database.
func LooksLikeToken(prefix, s string) bool {
	p, _, ok := splitToken(s)
	return ok && p == prefix
}

// LooksLikeAPIToken reports whether s has the shape of a personal API token
// ("kw_" and 52 base32 characters).
func LooksLikeAPIToken(s string) bool {
	return LooksLikeToken(PrefixAPIToken, s)
}

// splitToken splits a well-formed token into prefix and random part.
func splitToken(s string) (prefix, random string, ok bool) {
	if len(s) > maxPrefixLen+1+TokenRandomLen {
		return "", "", false
	}
	prefix, random, ok = strings.Cut(s, "_")
	if !ok || !validPrefix(prefix) || len(random) != TokenRandomLen {
		return "", "", false
	}
	for i := 0; i < len(random); i++ {
		c := random[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return "", "", false
		}
	}
	// The last character carries only 1 significant bit of 5 (256 = 51*5+1);
	// canonical encodings have the other 4 bits zero.
	if b, err := tokenEncoding.DecodeString(random); err != nil || tokenEncoding.EncodeToString(b) != random {
		return "", "", false
	}
	return prefix, random, true
}
