package classify

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden analyses in testdata/corpus/*.golden.json")

// TestCorpus runs the analyser over every corpus log and checks it against
// the log's expectation and its golden analysis.
func TestCorpus(t *testing.T) {
	cases, err := LoadCorpus(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	var failing, passing int
	for _, c := range cases {
		if c.Expect.Passing {
			passing++
		} else {
			failing++
		}
		t.Run(c.Name, func(t *testing.T) {
			res := analyzeFile(t, c.Path, Options{})
			cs := c.Expect.Check(c.Name, res)
			for _, p := range cs.Problems {
				t.Error(p)
			}
			golden := filepath.Join(corpusDir, c.Name+".golden.json")
			got, err := json.MarshalIndent(res, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run go test -update): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("analysis differs from %s (run go test -update and review the diff):\n%s", golden, got)
			}
		})
	}
	if failing < 40 || passing < 8 {
		t.Errorf("corpus has %d failing and %d passing logs, want at least 40 and 8", failing, passing)
	}
}

// TestCorpusPassingLogsWithoutGate checks that the rules alone, without the
// agent's exit status, report nothing primary on passing logs: the gate is a
// safety net, not the reason passing logs are quiet.
func TestCorpusPassingLogsWithoutGate(t *testing.T) {
	cases, err := LoadCorpus(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if !c.Expect.Passing {
			continue
		}
		res := analyzeFile(t, c.Path, Options{ignoreExitStatus: true})
		for _, f := range res.Failures {
			t.Errorf("%s: reported [%s] %q from %q", c.Name, f.Category, f.Title, f.Excerpt[0])
		}
	}
}

// TestCorpusScore holds the analyser to the done bar on the corpus.
func TestCorpusScore(t *testing.T) {
	cases, err := LoadCorpus(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ScoreCorpus(cases, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sc.RootCauseRate() < 90 || sc.CategoryAccuracy() < 90 || sc.FalsePositives > 0 || sc.DetectionRate() < 95 {
		t.Errorf("score below the bar: root %.1f%% category %.1f%% detection %.1f%% false positives %d",
			sc.RootCauseRate(), sc.CategoryAccuracy(), sc.DetectionRate(), sc.FalsePositives)
	}
}

func analyzeFile(t *testing.T, path string, opts Options) Result {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Analyze(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
