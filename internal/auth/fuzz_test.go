package auth

import (
	"strings"
	"testing"
)

// FuzzDecodeHash checks that any stored string parses or fails cleanly, and
// that whatever parses stays within the cost bounds.
func FuzzDecodeHash(f *testing.F) {
	f.Add(encodeHash(DefaultParams, make([]byte, 16), make([]byte, 32)))
	f.Add("$argon2id$v=19$m=65536,t=1,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$argon2id$v=19$m=,t=,p=$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := decodeHash(s)
		if err != nil {
			if strings.Contains(err.Error(), s) && len(s) > 8 {
				t.Fatalf("error echoes the input: %v", err)
			}
			return
		}
		if p.Memory > maxDecodeMemory || p.Time > maxDecodeTime || p.Threads > maxDecodeThreads ||
			len(salt) > maxDecodeSaltLen || len(key) > maxDecodeKeyLen || p.Time == 0 || p.Threads == 0 {
			t.Fatalf("accepted out-of-bounds params %+v", p)
		}
	})
}

// FuzzTokenShape checks that the shape checks never panic and that hints
// never reveal more than 4 characters of anything.
func FuzzTokenShape(f *testing.F) {
	plain, _, _ := NewToken(PrefixAPIToken)
	f.Add(plain)
	f.Add("kw_")
	f.Add("_")
	f.Fuzz(func(t *testing.T, s string) {
		ok := LooksLikeAPIToken(s)
		if ok && !strings.HasPrefix(s, "kw_") {
			t.Fatalf("LooksLikeAPIToken(%q) without the kw_ prefix", s)
		}
		hint := TokenHint(s)
		if hint != "…" {
			prefix, random, _ := strings.Cut(s, "_")
			if hint != prefix+"_…"+random[len(random)-4:] {
				t.Fatalf("TokenHint(%q) = %q", s, hint)
			}
		}
	})
}
