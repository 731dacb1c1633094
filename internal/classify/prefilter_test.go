package classify

import (
	"slices"
	"strings"
	"testing"
)

func TestLiteralSet(t *testing.T) {
	s := newLiteralSet([]string{"--- FAIL: ", "error TS", "npm ERR!", "Traceback (most"})
	tests := []struct {
		line string
		want []int
	}{
		{"--- FAIL: TestX (0.00s)", []int{0}},
		{"    --- FAIL: TestX/sub", []int{0}},
		{"src/a.ts(1,2): error TS2322: x", []int{1}},
		{"npm ERR! code E404", []int{2}},
		{"x npm ERR! and error TS1 and --- FAIL: ", []int{0, 1, 2}},
		{"Traceback (most recent call last):", []int{3}},
		{"nothing to see here", nil},
		{"npm ERR", nil},
		{"", nil},
	}
	for _, tt := range tests {
		got := s.scan([]byte(tt.line), nil)
		slices.Sort(got)
		got = slices.Compact(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("scan(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
	// Every offset of every literal is found, whatever its alignment.
	for pad := 0; pad < 9; pad++ {
		for i, lit := range s.lits {
			line := strings.Repeat("x", pad) + lit + strings.Repeat("y", pad%3)
			if !slices.Contains(s.scan([]byte(line), nil), i) {
				t.Errorf("literal %q not found at offset %d in %q", lit, pad, line)
			}
		}
	}
}

// TestLiteralSetFindsEveryRuleLiteral checks the rule table's literal set:
// every literal is found at every alignment, in a line of its own or
// between other text, and a line that lacks one of its bytes does not
// report it.
func TestLiteralSetFindsEveryRuleLiteral(t *testing.T) {
	e, err := newEngine(Rules)
	if err != nil {
		t.Fatal(err)
	}
	s := e.lits
	for i, lit := range s.lits {
		for pad := 0; pad < 4; pad++ {
			for _, line := range []string{
				strings.Repeat(" ", pad) + lit,
				strings.Repeat("a", pad) + lit + " tail",
			} {
				if !slices.Contains(s.scan([]byte(line), nil), i) {
					t.Errorf("literal %q not found in %q", lit, line)
				}
			}
		}
		cut := lit[:len(lit)/2] + "\x00" + lit[len(lit)/2+1:]
		for _, hit := range s.scan([]byte(cut), nil) {
			if s.lits[hit] == lit {
				t.Errorf("literal %q reported in %q", lit, cut)
			}
		}
	}
}

func BenchmarkPrefilter(b *testing.B) {
	e, err := newEngine(Rules)
	if err != nil {
		b.Fatal(err)
	}
	var lines [][]byte
	n := 0
	for _, l := range append(append([]string{}, ordinary...), noise...) {
		lines = append(lines, []byte(l))
		n += len(l)
	}
	b.SetBytes(int64(n))
	hits := make([]int, 0, 16)
	for b.Loop() {
		for _, l := range lines {
			hits = e.lits.scan(l, hits[:0])
		}
	}
}
