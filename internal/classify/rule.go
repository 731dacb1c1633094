package classify

import (
	"fmt"
	"regexp"
	"regexp/syntax"
)

// Rule recognises one kind of failure line. Rules are data: the table in
// rules.go is the whole of the analyser's knowledge of tool output formats.
//
// A rule's Pattern may use these named groups: path, line, col (a location),
// test (a failing or passing test), msg, code and any other name for use in
// the Title template.
type Rule struct {
	// ID names the rule; it is part of the fingerprint.
	ID string
	// Category of the failures the rule finds.
	Category Category
	// Literals are the prefilter: the rule is only tried on lines containing
	// at least one of them (case-sensitive, at least 2 bytes each).
	Literals []string
	// Pattern is tried on the ANSI-free text of candidate lines.
	Pattern string
	// LiteralOnly makes a literal hit a match without trying Pattern (which
	// may then be empty): for rules that only look for fixed phrases.
	LiteralOnly bool
	// Not, when set, rejects a line that also matches it.
	Not string
	// Title is a template: ${name} expands to a group of Pattern, ${text} to
	// the whole line, ${next} to the first non-blank context line after it
	// (tool prefixes like "npm ERR! " removed) and ${locmsg} to the msg group
	// of the first LocPattern match in the context.
	Title string
	// Priority orders failures: higher is more causal. See the constants.
	Priority int
	// Confidence in [0,1] of a failure found by this rule.
	Confidence float64
	// After is how many lines of context after the match go in the excerpt.
	After int
	// AfterMode says how the after-context ends: "" after After lines,
	// "indented" at the first line that is not indented (blank lines allowed),
	// "blank" at the first blank line.
	AfterMode string
	// StopAt, when set, ends the after-context before a line matching it.
	StopAt string
	// Before is how many lines before the match go in the excerpt, stopping
	// at a group header, a command or a blank line.
	Before int
	// BeforeBlanks makes the before-context skip blank lines instead of
	// stopping at them (a summary printed after a blank-separated report).
	BeforeBlanks bool
	// Group merges a match into the previous failure of the same rule when
	// it is within a few lines of it (a list of compiler errors is one
	// failure with several locations).
	Group bool
	// Secondary marks a consequence, like "make: *** Error 2" or
	// "BUILD FAILED": it is only reported when nothing primary was found.
	Secondary bool
	// Weak rules do not start a failure on a line that is already part of
	// another failure's context (a panic inside a test's output).
	Weak bool
	// Action gives the rule a special role: "pass" (the test passed, which
	// resolves an earlier failure of the same test), "block:<kind>" (a
	// multi-line structure collected by code: traceback, gopanic, gorace),
	// "state:<name>" / "unstate:<name>" (enter or leave a parser state),
	// "list:<name>" (a state for the list that follows: entered by a
	// command it lasts until the next command, entered by printed output
	// it ends at the first line after the items that is not one),
	// "errline" (the line looks like an error: the fallback's root-cause
	// candidate, never a failure itself),
	// "eslint" (the path is on the preceding file header line),
	// "prevtest:<regexp>" (the test name is on one of the 4 preceding
	// lines), "gotest" (the context is the output the Go test printed under
	// its "=== RUN" line) or "mocha" (the test name continues on the next
	// lines up to one ending in a colon).
	Action string
	// State, when set, makes the rule apply only while that state is on.
	State string
	// LocPattern finds more locations (and ${locmsg}) in the context lines.
	LocPattern string
	// TestPattern finds more failing tests (its "test" group) in the context
	// lines: a summary that lists one test per line.
	TestPattern string
	// MsgPattern, when ${locmsg} is still empty, takes it from the msg group
	// of the first context line it matches (testify's "Error:" line).
	MsgPattern string
	// RequireLoc demotes a failure without any location to a secondary,
	// unknown one (rustc's "error:" without "-->" is not a compiler error).
	RequireLoc bool
	// Refine adjusts the category when the excerpt, the line or the current
	// command match.
	Refine []Refinement
}

// Refinement changes a failure's category (and possibly makes it primary)
// when Pattern matches In: "line" (the matched line), "excerpt" (any line
// of the excerpt) or "command" (the last "$ command" the agent ran).
type Refinement struct {
	In       string
	Pattern  string
	Category Category
	// Primary makes a Secondary rule's failure primary.
	Primary bool
	// Secondary makes the failure secondary.
	Secondary bool

	re *regexp.Regexp
}

// Priorities used by the rule table.
const (
	PriorityInfra      = 100 // full disks, OOM kills, lost agents
	PriorityDependency = 90  // resolution, download, network
	PriorityCompile    = 80  // compiler and type errors
	PriorityConfig     = 70  // missing commands, bad config
	PriorityCrash      = 55  // panics, data races, timeouts
	PriorityTest       = 50  // failing tests
	PriorityLint       = 40  // linters
	PriorityUnknown    = 30  // generic error lines
	PrioritySummary    = 20  // summaries of failures found elsewhere
)

type compiledRule struct {
	Rule
	re, not, loc *regexp.Regexp
	tests        *regexp.Regexp
	stop, msg    *regexp.Regexp
	prevTest     *regexp.Regexp
	groups       map[string]int
	// linePrefix is a literal every matching line starts with (after
	// optional white space when skipSpace), checked before the regexp.
	linePrefix string
	skipSpace  bool
	idx        int
}

func compileRules(rules []Rule) ([]*compiledRule, error) {
	out := make([]*compiledRule, 0, len(rules))
	seen := map[string]bool{}
	for i, r := range rules {
		if seen[r.ID] {
			return nil, fmt.Errorf("compile rule %q: duplicate ID", r.ID)
		}
		seen[r.ID] = true
		if len(r.Literals) == 0 {
			return nil, fmt.Errorf("compile rule %q: no prefilter literals", r.ID)
		}
		cr := &compiledRule{Rule: r, idx: i, groups: map[string]int{}}
		var err error
		if r.LiteralOnly && r.Pattern == "" {
			r.Pattern = ".*"
			cr.Pattern = ".*"
		}
		if cr.re, err = regexp.Compile(r.Pattern); err != nil {
			return nil, fmt.Errorf("compile rule %q pattern: %w", r.ID, err)
		}
		cr.linePrefix, cr.skipSpace = requiredPrefix(r.Pattern)
		for j, name := range cr.re.SubexpNames() {
			if name != "" {
				cr.groups[name] = j
			}
		}
		if r.Not != "" {
			if cr.not, err = regexp.Compile(r.Not); err != nil {
				return nil, fmt.Errorf("compile rule %q not: %w", r.ID, err)
			}
		}
		if r.MsgPattern != "" {
			if cr.msg, err = regexp.Compile(r.MsgPattern); err != nil {
				return nil, fmt.Errorf("compile rule %q message: %w", r.ID, err)
			}
		}
		if r.StopAt != "" {
			if cr.stop, err = regexp.Compile(r.StopAt); err != nil {
				return nil, fmt.Errorf("compile rule %q stop: %w", r.ID, err)
			}
		}
		if r.LocPattern != "" {
			if cr.loc, err = regexp.Compile(r.LocPattern); err != nil {
				return nil, fmt.Errorf("compile rule %q locations: %w", r.ID, err)
			}
		}
		if r.TestPattern != "" {
			if cr.tests, err = regexp.Compile(r.TestPattern); err != nil {
				return nil, fmt.Errorf("compile rule %q tests: %w", r.ID, err)
			}
		}
		if p, ok := cutPrefix(r.Action, "prevtest:"); ok {
			if cr.prevTest, err = regexp.Compile(p); err != nil {
				return nil, fmt.Errorf("compile rule %q prevtest: %w", r.ID, err)
			}
		}
		cr.Refine = append([]Refinement(nil), r.Refine...)
		for k := range cr.Refine {
			if cr.Refine[k].re, err = regexp.Compile(cr.Refine[k].Pattern); err != nil {
				return nil, fmt.Errorf("compile rule %q refinement: %w", r.ID, err)
			}
		}
		out = append(out, cr)
	}
	return out, nil
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}

// requiredPrefix returns the literal that every match of an anchored
// pattern starts with, possibly after leading white space (`^\s*lit`), so
// that most lines can be rejected without running the regexp.
func requiredPrefix(pattern string) (prefix string, skipSpace bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return "", false
	}
	re = re.Simplify()
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 || re.Sub[0].Op != syntax.OpBeginText {
		return "", false
	}
	i := 1
	if sub := re.Sub[i]; sub.Op == syntax.OpStar && len(sub.Sub) == 1 && sub.Sub[0].Op == syntax.OpCharClass && isSpaceClass(sub.Sub[0]) {
		skipSpace = true
		i++
	}
	if i < len(re.Sub) && re.Sub[i].Op == syntax.OpLiteral && re.Sub[i].Flags&syntax.FoldCase == 0 {
		return string(re.Sub[i].Rune), skipSpace
	}
	return "", false
}

func isSpaceClass(re *syntax.Regexp) bool {
	// \s is the ranges \t-\n, \f-\r and ' '.
	r := re.Rune
	return len(r) == 6 && r[0] == '\t' && r[1] == '\n' && r[2] == '\f' && r[3] == '\r' && r[4] == ' ' && r[5] == ' '
}
