package classify

import "bytes"

// diffSides are the names test frameworks give the two sides of an
// assertion diff ("--- expected" / "+++ actual" in Minitest, "--- Expected"
// / "+++ Actual" in PHPUnit).
var diffSides = [][]byte{[]byte("expected"), []byte("actual"), []byte("received"), []byte("got"), []byte("want")}

// isDiffHeader reports whether a line the parser took for a Buildkite group
// header ("--- x", "+++ x") is the header of an assertion diff: its title is
// just the name of a side, optionally quoted. Such a line belongs to the
// failure's output, so it must not end the failure's context.
func isDiffHeader(t []byte) bool {
	if len(t) < 5 || !(bytes.HasPrefix(t, []byte("--- ")) || bytes.HasPrefix(t, []byte("+++ "))) {
		return false
	}
	rest := bytes.Trim(bytes.TrimSpace(t[4:]), `"'`)
	for _, side := range diffSides {
		if bytes.EqualFold(rest, side) {
			return true
		}
	}
	return false
}
