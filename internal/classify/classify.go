// Package classify explains a failed Buildkite job from its log: it finds the
// lines that caused the failure among the many that merely say "error",
// classifies them, and extracts locations, failing tests and an excerpt.
//
// Analysis is a single streaming pass over the log (see package logparse).
// Every line goes through a multi-literal prefilter; only lines containing one
// of the rules' literals are tried against the rules' regular expressions.
// Memory is bounded: a small ring of recent lines for context and a bounded
// number of findings, never the whole log.
//
// The rules are data (see Rules); docs/analysis.md explains how to add one.
package classify

import (
	"bytes"
	"encoding/json"
)

// Category is the kind of a failure.
type Category string

// The categories a failure can have.
const (
	Compile        Category = "compile"
	Test           Category = "test"
	Lint           Category = "lint"
	Typecheck      Category = "typecheck"
	Dependency     Category = "dependency"
	Infrastructure Category = "infrastructure"
	Timeout        Category = "timeout"
	OOM            Category = "oom"
	Network        Category = "network"
	Config         Category = "config"
	Unknown        Category = "unknown"
)

// Categories lists every category in a stable order.
var Categories = []Category{Compile, Test, Lint, Typecheck, Dependency, Infrastructure, Timeout, OOM, Network, Config, Unknown}

// Location is a place in the repository that a failure points at. Line and
// Column are as printed by the tool, 0 when absent.
type Location struct {
	Path   string `json:"path"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

// Failure is one distinct cause of a failed job.
type Failure struct {
	Category    Category   `json:"category"`
	Title       string     `json:"title"`
	Section     string     `json:"section"`
	Excerpt     []string   `json:"excerpt"`
	Locations   []Location `json:"locations"`
	Tests       []string   `json:"tests"`
	Fingerprint string     `json:"fingerprint"`
	Confidence  float64    `json:"confidence"`
	FirstLine   int        `json:"first_line"`
	LastLine    int        `json:"last_line"`
	// Rule is the ID of the rule that found the failure. It is not part of
	// the JSON document.
	Rule string `json:"-"`
}

// Result is the analysis of one job log.
type Result struct {
	// Failed is true when the log shows the job failed: the agent reported a
	// failing command, or a failure was found.
	Failed bool `json:"failed"`
	// Failures are the distinct causes found, most causal first.
	Failures []Failure `json:"failures"`
}

// MarshalJSON encodes the result with empty lists as [] rather than null.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	p := plain(r)
	if p.Failures == nil {
		p.Failures = []Failure{}
	}
	for i := range p.Failures {
		f := &p.Failures[i]
		if f.Excerpt == nil {
			f.Excerpt = []string{}
		}
		if f.Locations == nil {
			f.Locations = []Location{}
		}
		if f.Tests == nil {
			f.Tests = []string{}
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // logs are full of <, > and &
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Redactor masks secrets; *redact.Redactor satisfies it.
type Redactor interface {
	String(s string) string
}

// Options configures Analyze. The zero value is ready to use.
type Options struct {
	// Redactor, when set, masks secrets in titles, excerpts, tests and
	// locations before they leave the analyser.
	Redactor Redactor
	// RepoPrefixes are extra path prefixes to strip from locations (for
	// example a custom checkout directory). Build directories of the
	// Buildkite agent, /workdir/, /app/ and GitHub-style runner paths are
	// always stripped.
	RepoPrefixes []string
	// MaxLineLength caps each log line; 0 means 4096.
	MaxLineLength int
	// MaxExcerptLines caps each excerpt; 0 means 30.
	MaxExcerptLines int
	// MaxFailures caps the failures reported; 0 means 20.
	MaxFailures int

	// ignoreExitStatus disables the passing-log gate, so that tests can
	// check that the rules alone stay quiet on passing logs.
	ignoreExitStatus bool
}

func (o Options) withDefaults() Options {
	if o.MaxLineLength <= 0 {
		o.MaxLineLength = 4096
	}
	if o.MaxExcerptLines <= 0 {
		o.MaxExcerptLines = 30
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = 20
	}
	return o
}
