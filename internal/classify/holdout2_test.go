package classify

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
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
	srcs, err := filepath.Glob(filepath.Join(holdout2Dir, "src", "*.txt"))
	if err != nil || len(srcs) == 0 {
		t.Fatalf("no sources: %v", err)
	}
	for _, src := range srcs {
		name := strings.TrimSuffix(filepath.Base(src), ".txt")
		logb, exp, err := renderSource(name, src)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		plain, body, err := plainBody(src)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if plain {
			logb = body
		}
		if err := os.WriteFile(filepath.Join(holdout2Dir, name+".log"), logb, 0o644); err != nil {
			t.Fatal(err)
		}
		eb, _ := json.MarshalIndent(exp, "", "  ")
		if err := os.WriteFile(filepath.Join(holdout2Dir, name+".expected.json"), append(eb, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
