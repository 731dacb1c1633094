package middleware

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

// FuzzClientIP checks that any X-Forwarded-For header yields either the peer
// or a well-formed address, and never panics.
func FuzzClientIP(f *testing.F) {
	f.Add("198.51.100.7")
	f.Add("6.6.6.6, 198.51.100.7, 10.1.1.1")
	f.Add(",,, ,garbage,[::1]")
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.0.0.2:80"
		r.Header.Set("X-Forwarded-For", xff)
		got := ClientIP(r, proxies)
		if _, err := netip.ParseAddr(got); err != nil {
			t.Fatalf("ClientIP = %q, not an address", got)
		}
	})
}

// FuzzSafePath checks that logged paths are bounded and never contain a
// token-shaped segment.
func FuzzSafePath(f *testing.F) {
	f.Add("/setup/" + secretSetup)
	f.Add("/a_b/c")
	f.Fuzz(func(t *testing.T, p string) {
		got := SafePath(p)
		if len(got) > maxLoggedPath+len("…") {
			t.Fatalf("SafePath length %d", len(got))
		}
		if len(got) <= maxLoggedPath {
			for _, seg := range splitPath(got) {
				if looksLikeToken(seg) {
					t.Fatalf("SafePath(%q) = %q keeps token-shaped %q", p, got, seg)
				}
			}
		}
	})
}

func splitPath(p string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return out
}
