package classify

import (
	"flag"
	"testing"
)

var genHoldout5 = flag.Bool("gen-holdout5", false, "regenerate testdata/holdout5/*.log and *.expected.json from testdata/holdout5/src/*.txt")

// holdout5Dir holds the fifth holdout set: real tool output (issue threads,
// tools' own test fixtures), leaning toward what Buildkite users run:
// monorepo tools, test-runner summaries, Buildkite agent and plugin errors,
// infrastructure failures and linters. Expectations were written before the
// analyser was run on it.
const holdout5Dir = "../../testdata/holdout5"

// TestGenerateHoldout5 turns testdata/holdout5/src/*.txt into logs with the
// source format of TestGenerateHoldout3.
func TestGenerateHoldout5(t *testing.T) {
	if !*genHoldout5 {
		t.Skip("run with -gen-holdout5 to regenerate the fifth holdout set")
	}
	generateHoldout(t, holdout5Dir)
}
