package classify

import (
	"flag"
	"testing"
)

var genHoldout2 = flag.Bool("gen-holdout2", false, "regenerate testdata/holdout2/*.log and *.expected.json from testdata/holdout2/src/*.txt")

// holdout2Dir holds the second holdout set: job logs written before the
// rules were tuned against them, independently of the corpus and of the
// first holdout set.
const holdout2Dir = "../../testdata/holdout2"

// TestGenerateHoldout2 turns testdata/holdout2/src/*.txt into logs, with the
// same source format as TestGenerateHoldout ("#! plain: true" writes plain
// text as copied from the Buildkite page).
func TestGenerateHoldout2(t *testing.T) {
	if !*genHoldout2 {
		t.Skip("run with -gen-holdout2 to regenerate the second holdout set")
	}
	generateHoldout(t, holdout2Dir)
}
