package classify

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

var genHoldout3 = flag.Bool("gen-holdout3", false, "regenerate testdata/holdout3/*.log and *.expected.json from testdata/holdout3/src/*.txt")

// holdout3Dir holds the third holdout set: job logs written before the
// rules were read closely, independently of the corpus and of the first two
// holdout sets.
const holdout3Dir = "../../testdata/holdout3"

// TestGenerateHoldout3 turns testdata/holdout3/src/*.txt into logs, with the
// source format of TestGenerateHoldout plus two extensions: a body line
// "{repeat N} text" stands for N copies of text with {i} replaced by the
// copy's number (long logs whose error is far above the end), and the
// header "#! crlf: true" writes the log with CRLF line endings.
func TestGenerateHoldout3(t *testing.T) {
	if !*genHoldout3 {
		t.Skip("run with -gen-holdout3 to regenerate the third holdout set")
	}
	generateHoldout(t, holdout3Dir)
}

// expandRepeats reads a holdout source, expands its "{repeat N} text"
// lines and reports whether it asks for CRLF line endings.
func expandRepeats(path string) ([]byte, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("open source: %w", err)
	}
	defer f.Close()
	var out bytes.Buffer
	var crlf bool
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if rest, ok := strings.CutPrefix(l, "#! crlf:"); ok {
			crlf = strings.TrimSpace(rest) == "true"
			continue
		}
		rest, ok := strings.CutPrefix(l, "{repeat ")
		if !ok {
			out.WriteString(l)
			out.WriteByte('\n')
			continue
		}
		ns, text, _ := strings.Cut(rest, "} ")
		n, err := strconv.Atoi(ns)
		if err != nil {
			return nil, false, fmt.Errorf("parse repeat count %q: %w", ns, err)
		}
		for i := 1; i <= n; i++ {
			out.WriteString(strings.ReplaceAll(text, "{i}", strconv.Itoa(i)))
			out.WriteByte('\n')
		}
	}
	return out.Bytes(), crlf, sc.Err()
}

// TestIsDiffHeader checks which would-be group headers are the two sides
// of an assertion diff.
func TestIsDiffHeader(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{"--- expected", true},
		{"+++ actual", true},
		{"--- Expected", true},
		{"+++ Actual", true},
		{`--- "expected"`, true},
		{"--- Running tests", false},
		{"+++ :rspec: Failures", false},
		{"--- expected output of the build", false},
		{"~~~ expected", false},
		{"---", false},
	}
	for _, tt := range tests {
		if got := isDiffHeader([]byte(tt.line)); got != tt.want {
			t.Errorf("isDiffHeader(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}
