package classify

import (
	"flag"
	"testing"
)

var genHoldout4 = flag.Bool("gen-holdout4", false, "regenerate testdata/holdout4/*.log and *.expected.json from testdata/holdout4/src/*.txt")

// holdout4Dir holds the fourth holdout set: real tool output that people
// pasted into issue threads or committed as test fixtures (each source names
// its origin), with expectations written before the analyser was run on it.
const holdout4Dir = "../../testdata/holdout4"

// TestGenerateHoldout4 turns testdata/holdout4/src/*.txt into logs with the
// source format of TestGenerateHoldout3. The "#! origin:" header only
// records where the text came from.
func TestGenerateHoldout4(t *testing.T) {
	if !*genHoldout4 {
		t.Skip("run with -gen-holdout4 to regenerate the fourth holdout set")
	}
	generateHoldout(t, holdout4Dir)
}
