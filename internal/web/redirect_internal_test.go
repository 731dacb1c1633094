package web

import "testing"

// TestSafeNext checks that the after-sign-in target stays on this site,
// including targets a browser would turn into another site by dropping
// tabs and line breaks.
func TestSafeNext(t *testing.T) {
	for _, c := range []struct{ next, want string }{
		{"", "/"},
		{"/orgs/acme/builds", "/orgs/acme/builds"},
		{"/orgs/acme/builds?state=failed", "/orgs/acme/builds?state=failed"},
		{"https://evil.example/", "/"},
		{"//evil.example/", "/"},
		{"/\\evil.example/", "/"},
		{"/\t/evil.example/", "/"},
		{"/\n/evil.example/", "/"},
		{"/\r/evil.example/", "/"},
		{"/\x00/evil.example/", "/"},
		{"/ /evil.example/", "/"},
		{"/\x7f/evil.example/", "/"},
		{"/%09/evil.example/", "/%09/evil.example/"}, // stays escaped: a path on this site
	} {
		if got := safeNext(c.next); got != c.want {
			t.Errorf("safeNext(%q) = %q, want %q", c.next, got, c.want)
		}
	}
}
