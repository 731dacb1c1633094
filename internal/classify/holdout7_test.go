package classify

import (
	"flag"
	"testing"
)

var genHoldout7 = flag.Bool("gen-holdout7", false, "regenerate testdata/holdout7/*.log and *.expected.json from testdata/holdout7/src/*.txt")

// holdout7Dir holds the seventh holdout set: real tool output from tools
// none of the earlier sets covered (PHPStan, Pulumi, dialyzer, SwiftLint,
// CocoaPods, tflint, ansible-lint, yamllint, meson/ninja, helm lint,
// gitleaks, clang-format, conda, Hugo, Jekyll, Angular, ktlint, Crystal,
// fastlane, cargo-deny, deno lint, codespell, checkov, kubeconform), each
// source naming its origin. Expectations were written before the analyser
// was run on it.
const holdout7Dir = "../../testdata/holdout7"

// TestGenerateHoldout7 turns testdata/holdout7/src/*.txt into logs with the
// source format of TestGenerateHoldout3.
func TestGenerateHoldout7(t *testing.T) {
	if !*genHoldout7 {
		t.Skip("run with -gen-holdout7 to regenerate the seventh holdout set")
	}
	generateHoldout(t, holdout7Dir)
}
