package classify

import (
	"flag"
	"testing"
)

var genHoldout6 = flag.Bool("gen-holdout6", false, "regenerate testdata/holdout6/*.log and *.expected.json from testdata/holdout6/src/*.txt")

// holdout6Dir holds the sixth holdout set: real tool output from ecosystems
// the earlier sets did not cover (Haskell, OCaml, Zig, Scala, Erlang, Perl,
// R, Julia, Xcode, Flutter, Packer, CDK, Serverless, kustomize, pre-commit,
// commitlint, semantic-release, k6, markdownlint, Codecov), each source
// naming its origin. Expectations were written before the analyser was run
// on it.
const holdout6Dir = "../../testdata/holdout6"

// TestGenerateHoldout6 turns testdata/holdout6/src/*.txt into logs with the
// source format of TestGenerateHoldout3.
func TestGenerateHoldout6(t *testing.T) {
	if !*genHoldout6 {
		t.Skip("run with -gen-holdout6 to regenerate the sixth holdout set")
	}
	generateHoldout(t, holdout6Dir)
}
