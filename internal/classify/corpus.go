package classify

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Expectation is the expected answer for one corpus log, stored next to it
// as NAME.expected.json.
type Expectation struct {
	// Passing is true for a log that must report no failure.
	Passing bool `json:"passing,omitempty"`
	// Category of the first (most causal) failure.
	Category Category `json:"category,omitempty"`
	// Title is a substring of the first failure's title.
	Title string `json:"title,omitempty"`
	// Root is a substring of a line that must be in the first failure's
	// excerpt: the line that shows the root cause.
	Root string `json:"root,omitempty"`
	// Locations that must be among the failures' locations (line 0 matches
	// any line).
	Locations []Location `json:"locations,omitempty"`
	// Tests that must be among the failures' failing tests.
	Tests []string `json:"tests,omitempty"`
	// Failures is the minimum number of distinct failures, 0 for no check.
	Failures int `json:"failures,omitempty"`
	// MaxFailures is the maximum number of distinct failures, 0 for no
	// check (a retried test or a repeated error must not count twice).
	MaxFailures int `json:"max_failures,omitempty"`
}

// CorpusCase is one log of a corpus and its expectation.
type CorpusCase struct {
	Name   string
	Path   string
	Expect Expectation
}

// LoadCorpus lists the NAME.log files in dir that have a
// NAME.expected.json, sorted by name. It fails when dir cannot be read, an
// expectation does not parse, or there are no cases.
func LoadCorpus(dir string) ([]CorpusCase, error) {
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, fmt.Errorf("list corpus %s: %w", dir, err)
	}
	sort.Strings(logs)
	var out []CorpusCase
	for _, l := range logs {
		name := strings.TrimSuffix(filepath.Base(l), ".log")
		b, err := os.ReadFile(filepath.Join(dir, name+".expected.json"))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read expectation for %s: %w", name, err)
		}
		var e Expectation
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("parse expectation for %s: %w", name, err)
		}
		out = append(out, CorpusCase{Name: name, Path: l, Expect: e})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("load corpus %s: no NAME.log with NAME.expected.json", dir)
	}
	return out, nil
}

// CaseScore is how the analyser did on one corpus log.
type CaseScore struct {
	Name          string
	Passing       bool
	Detected      bool // a failing log produced a failure
	Category      bool // the first failure's category is right
	Title         bool // the first failure's title contains the expected text
	RootInExcerpt bool // the root-cause line is in the first excerpt
	FalsePositive bool // a passing log produced a failure
	Locations     int  // expected locations found
	LocationsWant int
	Tests         int // expected tests found
	TestsWant     int
	Count         bool // at least the expected number of failures
	Problems      []string
	Result        Result
}

// OK reports whether the case met every expectation.
func (c CaseScore) OK() bool { return len(c.Problems) == 0 }

// Check scores one result against its expectation.
func (e Expectation) Check(name string, res Result) CaseScore {
	s := CaseScore{Name: name, Passing: e.Passing, Result: res, LocationsWant: len(e.Locations), TestsWant: len(e.Tests)}
	fail := func(format string, args ...any) { s.Problems = append(s.Problems, fmt.Sprintf(format, args...)) }
	if e.Passing {
		if len(res.Failures) > 0 {
			s.FalsePositive = true
			fail("passing log reported %d failures, first %q", len(res.Failures), res.Failures[0].Title)
		}
		return s
	}
	if len(res.Failures) == 0 {
		fail("no failure found")
		return s
	}
	s.Detected = true
	first := res.Failures[0]
	s.Category = e.Category == "" || first.Category == e.Category
	if !s.Category {
		fail("category %s, want %s (title %q)", first.Category, e.Category, first.Title)
	}
	s.Title = e.Title == "" || strings.Contains(first.Title, e.Title)
	if !s.Title {
		fail("title %q does not contain %q", first.Title, e.Title)
	}
	s.RootInExcerpt = e.Root == ""
	for _, l := range first.Excerpt {
		if e.Root != "" && strings.Contains(l, e.Root) {
			s.RootInExcerpt = true
		}
	}
	if !s.RootInExcerpt {
		fail("root line %q not in the first excerpt %q", e.Root, first.Excerpt)
	}
	for _, want := range e.Locations {
		found := false
		for _, f := range res.Failures {
			for _, l := range f.Locations {
				if l.Path == want.Path && (want.Line == 0 || l.Line == want.Line) {
					found = true
				}
			}
		}
		if found {
			s.Locations++
		} else {
			fail("location %s:%d not found", want.Path, want.Line)
		}
	}
	for _, want := range e.Tests {
		found := false
		for _, f := range res.Failures {
			for _, t := range f.Tests {
				if t == want {
					found = true
				}
			}
		}
		if found {
			s.Tests++
		} else {
			fail("test %q not found", want)
		}
	}
	s.Count = len(res.Failures) >= e.Failures && (e.MaxFailures == 0 || len(res.Failures) <= e.MaxFailures)
	if !s.Count {
		fail("%d failures, want between %d and %d", len(res.Failures), e.Failures, e.MaxFailures)
	}
	return s
}

// Score summarises a corpus run.
type Score struct {
	Cases          []CaseScore
	Failing        int
	Passing        int
	Detected       int
	Category       int
	RootInExcerpt  int
	LocationsFound int
	LocationsWant  int
	TestsFound     int
	TestsWant      int
	FalsePositives int
}

// ScoreCorpus analyses every case and scores the results.
func ScoreCorpus(cases []CorpusCase, opts Options) (Score, error) {
	var sc Score
	for _, c := range cases {
		f, err := os.Open(c.Path)
		if err != nil {
			return Score{}, fmt.Errorf("open corpus log: %w", err)
		}
		res, err := Analyze(f, opts)
		f.Close()
		if err != nil {
			return Score{}, fmt.Errorf("analyse corpus log %s: %w", c.Name, err)
		}
		cs := c.Expect.Check(c.Name, res)
		sc.Cases = append(sc.Cases, cs)
		if c.Expect.Passing {
			sc.Passing++
			if cs.FalsePositive {
				sc.FalsePositives++
			}
			continue
		}
		sc.Failing++
		sc.LocationsWant += cs.LocationsWant
		sc.LocationsFound += cs.Locations
		sc.TestsWant += cs.TestsWant
		sc.TestsFound += cs.Tests
		if cs.Detected {
			sc.Detected++
		}
		if cs.Detected && cs.Category {
			sc.Category++
		}
		if cs.Detected && cs.RootInExcerpt {
			sc.RootInExcerpt++
		}
	}
	return sc, nil
}

func pct(n, d int) float64 {
	if d == 0 {
		return 100
	}
	return 100 * float64(n) / float64(d)
}

// DetectionRate is the percentage of failing logs with a failure found.
func (s Score) DetectionRate() float64 { return pct(s.Detected, s.Failing) }

// CategoryAccuracy is the percentage of failing logs whose first failure has
// the expected category.
func (s Score) CategoryAccuracy() float64 { return pct(s.Category, s.Failing) }

// RootCauseRate is the percentage of failing logs whose first excerpt holds
// the root-cause line.
func (s Score) RootCauseRate() float64 { return pct(s.RootInExcerpt, s.Failing) }

// LocationRecall is the percentage of expected locations found.
func (s Score) LocationRecall() float64 { return pct(s.LocationsFound, s.LocationsWant) }

// TestRecall is the percentage of expected failing tests found.
func (s Score) TestRecall() float64 { return pct(s.TestsFound, s.TestsWant) }
