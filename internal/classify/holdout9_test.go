package classify

import (
	"flag"
	"testing"
)

var genHoldout9 = flag.Bool("gen-holdout9", false, "regenerate testdata/holdout9/*.log and *.expected.json from testdata/holdout9/src/*.txt")

// holdout9Dir holds the ninth holdout set: long, noisy job logs of
// mainstream ecosystems (Go, JavaScript, Python, Ruby, Rust, Java) as CI
// systems stored them (complete Travis CI job logs committed as research
// data, Bitcoin Core's Cirrus CI task logs, a GitLab CI trace committed as a
// fixture), kept in order with their noise: passing tests, progress output,
// deprecation warnings, retries and cleanup after the failure. Each source
// names its origin. Expectations were written before the analyser was run
// on it.
const holdout9Dir = "../../testdata/holdout9"

// TestGenerateHoldout9 turns testdata/holdout9/src/*.txt into logs with the
// source format of TestGenerateHoldout3.
func TestGenerateHoldout9(t *testing.T) {
	if !*genHoldout9 {
		t.Skip("run with -gen-holdout9 to regenerate the ninth holdout set")
	}
	generateHoldout(t, holdout9Dir)
}
