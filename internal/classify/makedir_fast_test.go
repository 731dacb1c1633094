package classify

import (
	"regexp"
	"testing"
)

// TestParseMakeDirLineMatchesRules checks the regexp-free parser accepts
// exactly what the make-enter-dir and make-leave-dir patterns accept.
func TestParseMakeDirLineMatchesRules(t *testing.T) {
	var enter, leave *regexp.Regexp
	for _, r := range Rules {
		switch r.ID {
		case "make-enter-dir":
			enter = regexp.MustCompile(r.Pattern)
		case "make-leave-dir":
			leave = regexp.MustCompile(r.Pattern)
		}
	}
	if enter == nil || leave == nil {
		t.Fatal("make directory rules not found")
	}
	lines := []string{
		"make[1]: Entering directory '/build/src/net'",
		"make[12]: Leaving directory '/build/src/net'",
		"make: Entering directory `/build'",
		"gmake[2]: Entering directory '/w/a b/c'",
		"make[]: Entering directory '/x'",
		"make[1]: Entering directory /x",
		"make[1]: Entering directory ''",
		"make[1]: Entering directory 'a'b'",
		"  make[1]: Entering directory '/x'",
		"cmake[1]: Entering directory '/x'",
		"make[1]: Entering directory '/x' ",
		"make[1a]: Leaving directory '/x'",
		"make[1]: Leaving directory `/x`",
	}
	for _, l := range lines {
		dir, isEnter, ok := parseMakeDirLine([]byte(l))
		me, ml := enter.FindStringSubmatch(l), leave.FindStringSubmatch(l)
		want := me != nil || ml != nil
		if ok != want {
			t.Errorf("%q: parsed %v, rules match %v", l, ok, want)
			continue
		}
		if !ok {
			continue
		}
		m := ml
		if isEnter {
			m = me
		}
		if m == nil || string(dir) != m[len(m)-1] {
			t.Errorf("%q: dir %q enter %v, rules say %q", l, dir, isEnter, m)
		}
	}
}
