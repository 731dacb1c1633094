package classify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	mbits "math/bits"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/kitewatch/kitewatch/internal/logparse"
)

// Limits that keep memory bounded whatever the log.
const (
	ringSize         = 64
	maxFindings      = 400 // findings kept while streaming
	maxTestIndex     = 4096
	maxPytestDetails = 256
	maxExcerptLine   = 400 // bytes per excerpt line
	maxLocations     = 8
	maxTests         = 20
)

type engine struct {
	rules  []*compiledRule
	lits   *literalSet
	litMap [][]int // literal → rule indexes
	nWords int
	// errRule is the index of the "errline" rule (see isErrLine), -1 if none.
	errRule int
	// errColon is the index of the generic "error-colon" rule, -1 if none.
	errColon int
}

var (
	defaultOnce   sync.Once
	defaultEngine *engine
	defaultErr    error
)

func newEngine(rules []Rule) (*engine, error) {
	crs, err := compileRules(rules)
	if err != nil {
		return nil, err
	}
	e := &engine{rules: crs, nWords: (len(crs) + 63) / 64, errRule: -1, errColon: -1}
	for _, r := range crs {
		if r.Action == "errline" {
			e.errRule = r.idx
		}
		if r.ID == "error-colon" {
			e.errColon = r.idx
		}
	}
	litIndex := map[string]int{}
	var lits []string
	for _, r := range crs {
		for _, l := range r.Literals {
			i, ok := litIndex[l]
			if !ok {
				i = len(lits)
				litIndex[l] = i
				lits = append(lits, l)
				e.litMap = append(e.litMap, nil)
			}
			e.litMap[i] = append(e.litMap[i], r.idx)
		}
	}
	e.lits = newLiteralSet(lits)
	return e, nil
}

// Analyze reads a job log from r and explains why the job failed. It reads
// the log once, in constant memory. It fails only when reading r fails.
func Analyze(r io.Reader, opts Options) (Result, error) {
	defaultOnce.Do(func() { defaultEngine, defaultErr = newEngine(Rules) })
	if defaultErr != nil {
		return Result{}, fmt.Errorf("compile rules: %w", defaultErr)
	}
	return defaultEngine.analyze(r, opts)
}

// ringLine is a line kept for context.
type ringLine struct {
	num     int
	text    []byte
	section string
	kind    logparse.Kind
}

// finding is a failure being built.
type finding struct {
	rule      *compiledRule
	category  Category
	priority  int
	secondary bool
	conf      float64
	vars      map[string]string
	section   string
	root      []string
	before    []string
	after     []string
	locs      []Location
	tests     []string
	first     int
	last      int
	remaining int
	// heading: the root line only announces the error the next non-blank
	// line states (see isHeading).
	heading  bool
	blanks   int
	mode     string
	title    string // set by blocks; otherwise from the template
	command  string // the command whose output the failure is in
	resolved bool
	merged   bool
}

type analysis struct {
	e    *engine
	opts Options
	ring [ringSize]ringLine
	n    int // lines seen
	// cmdStates are the states the current command entered.
	cmdStates []string
	hits      []uint64
	litHits   []int
	found     []*finding
	open      *finding // the finding collecting after-context
	block     blockCollector

	testIndex map[string]*finding
	states    map[string]bool
	// lists are the list states ("list:<name>") printed output entered:
	// each ends at the first line after its items that is not one.
	lists map[string]*listState
	// lineState is the State of the rule that matched the current line.
	lineState string
	// goBuild mirrors states["gobuild"]: a "# pkg" header of go build or
	// go vet was seen and no test has run since (see goBuildState).
	goBuild bool
	command string

	// lastResolved is the line of the last pass that resolved a failure.
	lastResolved int

	agentSeen   bool
	agentFailed bool
	exitStatus  int
	exitLine    int
	exitContext []string
	exitSection string
	exitText    string
	exitCommand string
	exitOut     cmdOutput

	// out follows the output of the current command for the fallback;
	// lineErr says the current line looks like an error.
	out     cmdOutput
	lineErr bool
	// marked: the runner marked the current line "##[error]".
	marked   bool
	recap    bool // inside BuildKit's recap of a failed step
	cmdStart int  // line of the current command

	goTest goTestOutput

	pySection string
	pyDetails map[string]*pyDetail
	pyOrder   []string

	// makeDirs is the stack of directories make said it entered.
	makeDirs []makeDirEntry
}

type pyDetail struct {
	elines []string
	locs   []Location
}

func (e *engine) analyze(r io.Reader, opts Options) (Result, error) {
	opts = opts.withDefaults()
	a := &analysis{
		e:         e,
		opts:      opts,
		hits:      make([]uint64, e.nWords),
		litHits:   make([]int, 0, 16),
		testIndex: map[string]*finding{},
		goTest:    goTestOutput{byTest: map[string]*goTestLines{}},
		states:    map[string]bool{},
		pyDetails: map[string]*pyDetail{},
	}
	p := logparse.New(r, logparse.Options{MaxLineLength: opts.MaxLineLength})
	for p.Next() {
		a.line(p.Line())
	}
	if a.block != nil {
		a.finishBlock()
	}
	if err := p.Err(); err != nil {
		return Result{}, fmt.Errorf("read job log: %w", err)
	}
	return a.result(), nil
}

func (a *analysis) line(ln *logparse.Line) {
	if ln.Kind == logparse.KindText {
		if len(ln.Text) > 0 && ln.Text[0] == '{' {
			if out, ok := goTestJSONOutput(ln.Text); ok {
				ln.Text = out
			}
		}
		orig := len(ln.Text)
		// Azure Pipelines and GitHub Actions mark error lines with
		// "##[error]" (after a timestamp, if any); the marker goes, the
		// fact that the runner called the line an error stays.
		a.marked = bytes.Contains(ln.Text[:min(len(ln.Text), 48)], []byte("##[error]"))
		ln.Text = stripLinePrefix(ln.Text)
		a.buildkitRecap(ln)
		if len(ln.Text) < orig {
			// A copied log keeps timestamps before the agent's lines.
			if k, st := logparse.AgentLine(ln.Text); k != logparse.KindText {
				ln.Kind, ln.ExitStatus = k, st
			}
		}
	} else if ln.Kind == logparse.KindGroup && isDiffHeader(ln.Text) {
		ln.Kind = logparse.KindText
	}
	t := ln.Text
	if ln.Timestamp > 0 {
		a.agentSeen = true
	}
	switch ln.Kind {
	case logparse.KindAgentFailure, logparse.KindExitStatus:
		a.agentSeen = true
		if !a.agentFailed || ln.Kind == logparse.KindAgentFailure {
			a.exitStatus = ln.ExitStatus
		}
		if !a.agentFailed {
			a.exitText = strings.TrimSpace(strings.TrimPrefix(string(t), "🚨 "))
			a.noteExit(ln)
		}
		a.agentFailed = true
		a.closeContext()
	case logparse.KindCommand:
		a.command = string(t[2:])
		a.cmdStart = ln.Number
		a.out.reset()
		a.goBuild, a.states["gobuild"] = false, false
		a.closeContext()
		a.commandStates(t[2:])
	case logparse.KindText:
		a.goBuildState(t)
		// A log copied from another CI system ends a failed step with
		// that system's line ("Exited with code 1").
		if !a.agentFailed && !a.agentSeen && len(t) > 15 && (t[0] == 'E' || t[0] == 'T' || t[0] == 't') {
			if st := foreignExit(t); st != 0 {
				// Travis's line quotes the command that failed, which
				// the log's own "$ x" lines (setup, exports) do not.
				if cmd, _ := travisExit(t); cmd != "" {
					a.command = cmd
				}
				// GitHub's "The process '/usr/bin/az' failed" names the
				// command when the copy shows none.
				if a.command == "" && bytes.HasPrefix(t, []byte("Error: The process '")) {
					p := t[len("Error: The process '"):]
					if i := bytes.IndexByte(p, '\''); i > 0 {
						p = p[:i]
						a.command = string(p[bytes.LastIndexByte(p, '/')+1:])
					}
				}
				a.exitStatus = st
				a.noteExit(ln)
				a.agentFailed = true
				a.closeContext()
			}
		}
	case logparse.KindGroup:
		a.goBuild, a.states["gobuild"] = false, false
		if bytes.HasPrefix(t, []byte("~~~ Running")) || bytes.HasPrefix(t, []byte("~~~ Preparing")) {
			a.agentSeen = true
		}
		a.closeContext()
		a.pySection = ""
	}

	if a.block != nil {
		if a.block.feed(a, ln) {
			a.finishBlock()
		}
		if ln.Kind == logparse.KindText {
			a.out.feed(ln, false)
		}
		a.push(ln)
		return
	}
	if a.open != nil {
		a.feedContext(ln)
	}
	if ln.Kind == logparse.KindText {
		a.pytest(ln)
		a.goTest.feed(ln.Text)
		a.lineErr, a.lineState = false, ""
		nFound := len(a.found)
		a.match(ln)
		if a.marked && len(a.found) == nFound && a.open == nil {
			a.markedError(ln)
		}
		// A "path:line: message" line is error-like without an error word
		// (no literal to prefilter it, so a cheap byte scan, only until the
		// command's first error-like line).
		a.out.feed(ln, a.lineErr || a.out.errLine == 0 && looksDiagnostic(ln.Text))
		if len(a.lists) > 0 && !isBlank(ln.Text) {
			a.endLists()
		}
	}
	a.push(ln)
}

// markedError reports a line the CI runner marked "##[error]" that no rule
// matched as a generic error line (rule error-colon): a copied Azure
// Pipelines log has no exit line, only the task's marked errors.
func (a *analysis) markedError(ln *logparse.Line) {
	if a.e.errColon < 0 || isBlank(ln.Text) {
		return
	}
	r := a.e.rules[a.e.errColon]
	text := "Error: " + string(bytes.TrimSpace(ln.Text))
	if r.not != nil && r.not.MatchString(text) {
		return
	}
	if m := r.re.FindStringSubmatchIndex(text); m != nil {
		a.apply(r, ln, text, m)
		a.lineErr = true
	}
}

// noteExit records where and in which command's output the job failed.
func (a *analysis) noteExit(ln *logparse.Line) {
	a.exitLine = ln.Number
	a.exitSection = ln.Section
	a.exitContext = a.recent(12)
	a.exitCommand = a.command
	a.exitOut = a.out.snapshot()
}

func (a *analysis) push(ln *logparse.Line) {
	slot := &a.ring[a.n%ringSize]
	slot.num = ln.Number
	slot.text = append(slot.text[:0], ln.Text...)
	slot.section = ln.Section
	slot.kind = ln.Kind
	a.n++
}

// recent returns up to n of the most recent non-blank text lines, oldest first.
func (a *analysis) recent(n int) []string {
	var out []string
	for i := 1; i <= ringSize && i <= a.n && len(out) < n; i++ {
		rl := &a.ring[(a.n-i)%ringSize]
		if rl.kind == logparse.KindCommand || rl.kind == logparse.KindGroup {
			break
		}
		if rl.kind != logparse.KindText || len(bytes.TrimSpace(rl.text)) == 0 {
			continue
		}
		out = append(out, excerptLine(rl.text))
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func excerptLine(b []byte) string {
	if len(b) > maxExcerptLine {
		b = b[:maxExcerptLine]
	}
	return string(b)
}

func isIndented(t []byte) bool {
	return len(t) > 0 && (t[0] == ' ' || t[0] == '\t')
}

func isBlank(t []byte) bool { return len(bytes.TrimSpace(t)) == 0 }

// feedContext adds ln to the open finding's after-context, or closes it.
func (a *analysis) feedContext(ln *logparse.Line) {
	f := a.open
	if ln.Kind != logparse.KindText || f.remaining <= 0 {
		a.closeContext()
		return
	}
	t := ln.Text
	if f.rule.stop != nil && f.rule.stop.Match(t) {
		a.closeContext()
		return
	}
	blank := isBlank(t)
	if f.heading {
		// The line a heading announces is part of the root cause.
		if !blank {
			f.heading = false
			f.root = append(f.root, excerptLine(t))
			f.last = ln.Number
		}
		return
	}
	switch f.mode {
	case "indented":
		if blank {
			f.blanks++
			if f.blanks > 1 {
				a.closeContext()
			}
			return
		}
		if !isIndented(t) {
			a.closeContext()
			return
		}
	case "blank":
		if blank {
			if len(f.after) > 0 {
				a.closeContext()
			}
			return
		}
	default:
		if blank {
			return
		}
	}
	f.blanks = 0
	f.after = append(f.after, excerptLine(t))
	f.last = ln.Number
	f.remaining--
}

func (a *analysis) closeContext() { a.open = nil }

// match runs the prefilter and the candidate rules on one line.
func (a *analysis) match(ln *logparse.Line) {
	a.litHits = a.e.lits.scan(ln.Text, a.litHits[:0])
	if len(a.litHits) == 0 {
		return
	}
	for _, li := range a.litHits {
		for _, ri := range a.e.litMap[li] {
			a.hits[ri>>6] |= 1 << (ri & 63)
		}
	}
	if er := a.e.errRule; er >= 0 && a.hits[er>>6]&(1<<(er&63)) != 0 {
		a.hits[er>>6] &^= 1 << (er & 63)
		a.lineErr = a.out.errLine == 0 && a.isErrLine(ln.Text)
	}
	var text string
	matched := false
	for w := range a.hits {
		bits := a.hits[w]
		a.hits[w] = 0
		for bits != 0 && !matched {
			b := bits & -bits
			bits ^= b
			r := a.e.rules[w*64+mbits.TrailingZeros64(b)]
			if r.State != "" && !a.states[r.State] {
				continue
			}
			if r.Action == "pass" && len(a.testIndex) == 0 {
				continue
			}
			// A weak rule does not start a failure inside another one's
			// context, nor in the log output of a running Go test, which
			// may well pass.
			if r.Weak && (a.open != nil || (a.goTest.current != "" && isIndented(ln.Text))) {
				continue
			}
			if r.Action == "dir:enter" || r.Action == "dir:leave" {
				// Regexp-free: these lines are very common in C builds.
				if dir, enter, ok := parseMakeDirLine(ln.Text); ok && enter == (r.Action == "dir:enter") {
					a.makeDir(enter, string(dir))
					matched = true
				}
				continue
			}
			if r.linePrefix != "" {
				t := ln.Text
				if r.skipSpace {
					t = bytes.TrimLeft(t, " \t")
				}
				if !bytes.HasPrefix(t, []byte(r.linePrefix)) {
					continue
				}
			}
			if text == "" {
				if !r.LiteralOnly && !r.re.Match(ln.Text) {
					continue
				}
				text = string(ln.Text)
			}
			m := r.re.FindStringSubmatchIndex(text)
			if m == nil || (r.not != nil && r.not.MatchString(text)) {
				continue
			}
			a.apply(r, ln, text, m)
			matched = true
		}
	}
}

func groupVars(r *compiledRule, text string, m []int) map[string]string {
	vars := map[string]string{"text": strings.TrimSpace(text)}
	for name, i := range r.groups {
		if m[2*i] < 0 {
			continue
		}
		v := text[m[2*i]:m[2*i+1]]
		base := strings.TrimRight(name, "23")
		if base != name {
			if vars[base] == "" {
				vars[base] = v
			}
			continue
		}
		if vars[name] == "" {
			vars[name] = v
		}
	}
	return vars
}

func (a *analysis) apply(r *compiledRule, ln *logparse.Line, text string, m []int) {
	if r.Action == "dir:enter" || r.Action == "dir:leave" {
		// Frequent in recursive builds: no variables map.
		if i := r.groups["dir"]; i > 0 && m[2*i] >= 0 {
			a.makeDir(r.Action == "dir:enter", text[m[2*i]:m[2*i+1]])
		}
		return
	}
	vars := groupVars(r, text, m)
	a.lineState = r.State
	switch {
	case r.Action == "pass":
		a.pass(vars["test"], ln.Number)
		return
	case strings.HasPrefix(r.Action, "state:"):
		a.states[r.Action[len("state:"):]] = true
		return
	case strings.HasPrefix(r.Action, "list:"):
		st := r.Action[len("list:"):]
		a.states[st] = true
		if a.lists == nil {
			a.lists = map[string]*listState{}
		}
		a.lists[st] = &listState{}
		return
	case strings.HasPrefix(r.Action, "unstate:"):
		for _, st := range strings.Split(r.Action[len("unstate:"):], ",") {
			a.states[st] = false
		}
		return
	case r.Action == "cmdok":
		// The command says it succeeded: the generic error lines it
		// printed before were not its failure.
		for _, f := range a.found {
			if f.first > a.cmdStart && isGenericRule(f.rule.ID) {
				f.resolved = true
			}
		}
		return
	case r.Action == "pytest-line":
		a.pytestLine(vars["path"], vars["line"])
		return
	}
	if r.Action == "eslint" {
		vars["path"] = a.eslintPath()
	} else if r.Action == "rubocop" {
		vars["path"] = a.rubocopPath()
	}
	vars[makeDirVar] = a.currentMakeDir()
	if a.parallelMake() {
		vars[makePendingVar] = a.openMakeDirs()
	}
	if r.Group {
		if prev := a.lastOf(r); prev != nil && ln.Number-prev.last <= 12 && len(prev.root) < 12 {
			prev.root = append(prev.root, excerptLine(ln.Text))
			prev.addLoc(a, vars)
			prev.last = ln.Number
			prev.remaining = r.After
			prev.blanks = 0
			a.open = prev
			return
		}
	}
	if len(a.found) >= maxFindings {
		return
	}
	f := &finding{
		rule: r, category: r.Category, priority: r.Priority, secondary: r.Secondary,
		conf: r.Confidence, vars: vars, section: ln.Section,
		root: []string{excerptLine(ln.Text)}, first: ln.Number, last: ln.Number,
		remaining: r.After, mode: r.AfterMode, command: a.command,
	}
	if r.prevTest != nil {
		if tn := a.prevTest(r.prevTest); tn != "" {
			vars["test"] = tn
		}
	}
	f.addLoc(a, vars)
	f.heading = isGenericRule(r.ID) && r.After > 0 && isHeading(string(ln.Text), vars["msg"])
	if tn := vars["test"]; tn != "" {
		f.tests = append(f.tests, tn)
	}
	if r.Action == "gotest" {
		f.before = a.goTest.output(vars["test"])
	} else if r.Before > 0 {
		f.before = a.beforeContext(r.Before, r.BeforeBlanks)
	}
	if strings.HasPrefix(r.Action, "block:") {
		a.startBlock(r.Action[len("block:"):], f)
		a.found = append(a.found, f)
		a.open = nil
		return
	}
	// A test failure right after a data race is the race's test.
	if f.category == Test && len(f.tests) > 0 && len(a.found) > 0 {
		prev := a.found[len(a.found)-1]
		if prev.rule.ID == "go-race" && ln.Number-prev.last < 60 {
			prev.addTests(f.tests)
			a.index(prev)
			return
		}
	}
	a.found = append(a.found, f)
	a.index(f)
	if r.After > 0 {
		a.open = f
	} else {
		a.open = nil
	}
}

func (a *analysis) lastOf(r *compiledRule) *finding {
	for i := len(a.found) - 1; i >= 0 && i >= len(a.found)-3; i-- {
		if a.found[i].rule == r {
			return a.found[i]
		}
	}
	return nil
}

func (a *analysis) index(f *finding) {
	if f.category != Test && f.category != Timeout {
		return
	}
	for _, tn := range f.tests {
		if len(a.testIndex) < maxTestIndex {
			a.testIndex[tn] = f
		}
	}
}

// pass resolves earlier failures of a test that later passed (a retry).
func (a *analysis) pass(name string, num int) {
	if name == "" {
		return
	}
	for tn, f := range a.testIndex {
		if tn == name || strings.HasSuffix(tn, " › "+name) || strings.HasSuffix(tn, " > "+name) {
			if f.first < num {
				f.removeTest(tn)
				delete(a.testIndex, tn)
				a.lastResolved = num
			}
		}
	}
}

func (f *finding) removeTest(tn string) {
	out := f.tests[:0]
	for _, t := range f.tests {
		if t != tn {
			out = append(out, t)
		}
	}
	f.tests = out
	if len(f.tests) == 0 {
		f.resolved = true
	}
}

func (f *finding) addTests(ts []string) {
	for _, t := range ts {
		if !containsStr(f.tests, t) && len(f.tests) < maxTests {
			f.tests = append(f.tests, t)
		}
	}
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (f *finding) addLoc(a *analysis, vars map[string]string) {
	p := vars["path"]
	if p == "" {
		return
	}
	line, _ := strconv.Atoi(vars["line"])
	col, _ := strconv.Atoi(vars["col"])
	// A match knows the directory make was in; a location found later in
	// the context (LocPattern) takes the finding's.
	dir, ok := vars[makeDirVar]
	if !ok && f.vars != nil {
		dir = f.vars[makeDirVar]
	}
	p = inMakeDir(dir, p)
	l := Location{Path: relPath(p, a.opts.RepoPrefixes), Line: line, Column: col}
	f.addLocation(l)
	a.notePendingLoc(f, vars, l.Path)
}

func (f *finding) addLocation(l Location) {
	if l.Path == "" || len(f.locs) >= maxLocations {
		return
	}
	for _, x := range f.locs {
		if x == l {
			return
		}
	}
	f.locs = append(f.locs, l)
}

// beforeContext returns up to n lines before the current one, oldest first,
// stopping at a header, a command or, unless blanks is set (in which case
// blank lines are skipped), a blank line.
func (a *analysis) beforeContext(n int, blanks bool) []string {
	var out []string
	for i := 1; i <= n && i <= a.n && i < ringSize; i++ {
		rl := &a.ring[(a.n-i)%ringSize]
		if rl.kind == logparse.KindAgentFailure || rl.kind == logparse.KindExitStatus || rl.kind == logparse.KindReopen {
			continue // the agent's failure tail sits between a job's output and its summary
		}
		if blanks && rl.kind == logparse.KindText && isBlank(rl.text) {
			continue
		}
		if rl.kind != logparse.KindText || isBlank(rl.text) || bytes.HasPrefix(rl.text, []byte("=== RUN")) ||
			bytes.Contains(rl.text, []byte("--- PASS")) || bytes.Contains(rl.text, []byte("--- FAIL")) {
			break
		}
		out = append(out, excerptLine(rl.text))
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

var eslintHeader = regexp.MustCompile(`^\s*((?:[A-Za-z]:)?[\w.@/\\~-]+\.(?:[cm]?[jt]sx?|vue|svelte|json|md|mdx|html|astro|graphql|ya?ml))$`)

// eslintPath finds the file header line that eslint's stylish format prints
// above a file's problems.
func (a *analysis) eslintPath() string {
	for i := 1; i < ringSize && i <= a.n; i++ {
		rl := &a.ring[(a.n-i)%ringSize]
		if rl.kind != logparse.KindText {
			return ""
		}
		if len(rl.text) > 0 && rl.text[0] != ' ' && bytes.IndexByte(rl.text, ' ') < 0 {
			if m := eslintHeader.FindSubmatch(rl.text); m != nil {
				return string(m[1])
			}
		}
	}
	return ""
}

func (a *analysis) prevTest(re *regexp.Regexp) string {
	for i := 1; i <= 4 && i <= a.n; i++ {
		rl := &a.ring[(a.n-i)%ringSize]
		if m := re.FindSubmatch(rl.text); m != nil {
			if k := re.SubexpIndex("test"); k > 0 {
				return strings.TrimSpace(string(m[k]))
			}
		}
	}
	return ""
}

var (
	pySectionRe = regexp.MustCompile(`^_{3,} (.+?) _{3,}$`)
	pyLocRe     = regexp.MustCompile(`^(\S+\.py):(\d+)(?:: (?:in \w+|\w+(?:\.\w+)*)| in \w+\(\) -> .*)$`)
)

// pytest remembers the assertion lines and locations of pytest's failure
// sections so that the short summary's FAILED lines can show them.
func (a *analysis) pytest(ln *logparse.Line) {
	t := ln.Text
	if len(t) > 6 && t[0] == '_' && t[1] == '_' && t[2] == '_' {
		if m := pySectionRe.FindSubmatch(t); m != nil {
			a.pySection = string(m[1])
			if _, ok := a.pyDetails[a.pySection]; !ok {
				if len(a.pyOrder) >= maxPytestDetails {
					delete(a.pyDetails, a.pyOrder[0])
					a.pyOrder = a.pyOrder[1:]
				}
				a.pyDetails[a.pySection] = &pyDetail{}
				a.pyOrder = append(a.pyOrder, a.pySection)
			}
			return
		}
	}
	if a.pySection == "" {
		return
	}
	if len(t) > 0 && t[0] == '=' && bytes.HasPrefix(t, []byte("====")) {
		a.pySection = ""
		return
	}
	d := a.pyDetails[a.pySection]
	if d == nil {
		return
	}
	if (len(t) > 1 && t[0] == 'E' && t[1] == ' ' || bytes.HasPrefix(t, []byte("FAILURE: "))) && len(d.elines) < 8 {
		d.elines = append(d.elines, excerptLine(t))
	} else if bytes.Contains(t, []byte(".py:")) && len(d.locs) < 6 {
		if m := pyLocRe.FindSubmatch(t); m != nil {
			n, _ := strconv.Atoi(string(m[2]))
			d.locs = append(d.locs, Location{Path: relPath(string(m[1]), a.opts.RepoPrefixes), Line: n})
		}
	}
}

func (a *analysis) pyDetailFor(nodeid string) *pyDetail {
	i := strings.Index(nodeid, "::")
	if i < 0 {
		return nil
	}
	parts := strings.Split(nodeid[i+2:], "::")
	for _, key := range []string{strings.Join(parts, "."), parts[len(parts)-1], "file:" + nodeid[:i]} {
		if d := a.pyDetails[key]; d != nil {
			return d
		}
	}
	return nil
}

// goTestOutput keeps the output lines of running Go tests (go test -v
// prints a test's log lines under its "=== RUN" line, before its "--- FAIL"
// line), so that a failure can show its messages. Passed tests are
// forgotten; memory is bounded by maxGoTests tests of maxGoTestLines lines.
type goTestOutput struct {
	current string
	cur     *goTestLines
	byTest  map[string]*goTestLines
	order   []string
}

type goTestLines struct{ lines []string }

const (
	maxGoTests     = 64
	maxGoTestLines = 10
)

var (
	goRunPrefix  = []byte("=== ")
	goPassPrefix = []byte("--- PASS: ")
)

func (g *goTestOutput) feed(t []byte) {
	if len(t) == 0 {
		return
	}
	if t[0] == '=' && bytes.HasPrefix(t, goRunPrefix) {
		rest := t[len(goRunPrefix):]
		verb, name, _ := bytes.Cut(rest, []byte(" "))
		name = bytes.TrimSpace(name)
		if i := bytes.IndexByte(name, ' '); i >= 0 {
			name = name[:i]
		}
		if len(name) > 0 && (string(verb) == "RUN" || string(verb) == "CONT" || string(verb) == "NAME") {
			if string(name) != g.current {
				g.current = string(name)
				g.cur = nil
			}
		} else {
			g.current, g.cur = "", nil
		}
		return
	}
	if t[0] == 'B' && bytes.HasPrefix(t, []byte("Benchmark")) && bytes.IndexAny(t, " \t") < 0 {
		// A benchmark's name alone on a line: its log lines follow, then
		// its "--- FAIL: BenchmarkX" line.
		name := t
		if i := bytes.LastIndexByte(name, '-'); i > 0 && i+1 < len(name) && isDigit(name[i+1]) {
			name = name[:i]
		}
		g.current, g.cur = string(name), nil
		return
	}
	if t[0] != ' ' && t[0] != '-' {
		// Unindented output ends a test's log lines.
		g.current, g.cur = "", nil
		return
	}
	if g.current == "" && len(g.byTest) == 0 {
		return
	}
	tt := t
	if t[0] == ' ' {
		tt = bytes.TrimLeft(t, " ")
	}
	if len(tt) > 4 && tt[0] == '-' && tt[1] == '-' && tt[2] == '-' {
		if len(g.byTest) > 0 && (bytes.HasPrefix(tt, goPassPrefix) || bytes.HasPrefix(tt, []byte("--- SKIP: "))) {
			name := tt[len(goPassPrefix):]
			if i := bytes.IndexByte(name, ' '); i >= 0 {
				name = name[:i]
			}
			delete(g.byTest, string(name))
		}
		return
	}
	if g.current == "" || t[0] != ' ' {
		return
	}
	if g.cur == nil {
		g.cur = g.byTest[g.current]
		if g.cur == nil {
			if len(g.order) >= maxGoTests {
				delete(g.byTest, g.order[0])
				g.order = g.order[1:]
			}
			g.cur = &goTestLines{}
			g.byTest[g.current] = g.cur
			g.order = append(g.order, g.current)
		}
	}
	if len(g.cur.lines) < maxGoTestLines {
		g.cur.lines = append(g.cur.lines, excerptLine(t))
	}
}

// output returns the remembered output of a test and its subtests.
func (g *goTestOutput) output(test string) []string {
	var out []string
	for _, name := range g.order {
		if name == test || strings.HasPrefix(name, test+"/") {
			if tl := g.byTest[name]; tl != nil {
				out = append(out, tl.lines...)
			}
		}
	}
	return out
}

// stripLinePrefix removes prefixes that other tools put before each line of
// output, so that rules anchored at the start of a line still match: an
// ISO-8601 timestamp ("2024-05-01T10:00:00.123Z "), a clock time as CI
// services and log viewers print it ("08:42:27  ", "7:51:34 PM: ",
// "[15:50:52.950] "), a GitHub Actions log command ("##[error]"), a
// BuildKit step and time ("#12 3.204 ") and a Docker Compose service
// ("api-1  | "). A timestamp may be followed by one more prefix.
func stripLinePrefix(t []byte) []byte {
	if len(t) < 6 {
		return t
	}
	switch c := t[0]; {
	case c >= '0' && c <= '9':
		if len(t) > 21 && t[4] == '-' && t[7] == '-' && t[10] == 'T' && t[13] == ':' {
			if i := bytes.IndexByte(t[:min(len(t), 40)], ' '); i > 18 && (t[i-1] == 'Z' || isDigit(t[i-1])) {
				return stripMarker(t[i+1:])
			}
			// An empty line of a timestamped log is the timestamp alone
			// once trailing blanks are gone: it must stay a blank line,
			// which ends paragraphs and belongs inside test-failure blocks.
			if len(t) <= 40 && isISOStamp(t) {
				return t[:0]
			}
		}
		if k := clockPrefix(t); k > 0 {
			return stripMarker(t[k:])
		}
	case c == '[':
		if k := bytes.IndexByte(t[:min(len(t), 36)], ']'); k > 5 && k+1 < len(t) && t[k+1] == ' ' && isTimestamp(t[1:k]) {
			return stripMarker(t[k+2:])
		}
		// Python logging as Airflow writes a task's log: "[2023-09-08,
		// 10:14:54 +07] {subprocess.py:94} INFO - " before the tool's line,
		// which may carry its own clock.
		if k := bytes.IndexByte(t[:min(len(t), 40)], ']'); k > 10 && k+2 < len(t) && t[k+1] == ' ' && t[k+2] == '{' && isLogStamp(t[1:k]) {
			if n := loggerPrefix(t[k+2:]); n > 0 {
				return stripLinePrefix(t[k+2+n:])
			}
		}
	case c == '#':
		if bytes.HasPrefix(t, []byte("##[")) {
			return stripMarker(t)
		}
		i := 1
		for i < len(t) && isDigit(t[i]) {
			i++
		}
		if i > 1 && i < len(t) && t[i] == ' ' {
			j := i + 1
			for j < len(t) && (isDigit(t[j]) || t[j] == '.') {
				j++
			}
			if j > i+1 && j < len(t) && t[j] == ' ' && bytes.IndexByte(t[i+1:j], '.') >= 0 {
				return t[j+1:]
			}
		}
	case c >= 'a' && c <= 'z' || c == '@':
		if k := monorepoTaskPrefix(t); k > 0 {
			return t[k:]
		}
		if k := nixLogPrefix(t); k > 0 {
			return t[k:]
		}
		if k := bytes.Index(t[:min(len(t), 48)], []byte(" | ")); k > 0 {
			if isServiceName(bytes.TrimRight(t[:k], " ")) {
				return t[k+3:]
			}
		} else if bytes.HasSuffix(t, []byte(" |")) && isServiceName(bytes.TrimRight(t[:len(t)-2], " ")) {
			return t[:0]
		}
	}
	return t
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isLogStamp reports whether b is a date and time as Python's logging
// prints it: digits with '-', ':', ',', '.', '+' and blanks between them.
func isLogStamp(b []byte) bool {
	digits := 0
	for _, c := range b {
		switch {
		case isDigit(c):
			digits++
		case c == '-' || c == ':' || c == ',' || c == '.' || c == '+' || c == ' ':
		default:
			return false
		}
	}
	return digits >= 12
}

// loggerPrefix returns the length of a "{file.py:94} INFO - " prefix (the
// logger's location and level), 0 when t does not start with one.
func loggerPrefix(t []byte) int {
	k := bytes.IndexByte(t[:min(len(t), 64)], '}')
	if k < 3 || k+2 >= len(t) || t[k+1] != ' ' || bytes.IndexByte(t[:k], ' ') >= 0 {
		return 0
	}
	rest := t[k+2:]
	for _, lvl := range []string{"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"} {
		if bytes.HasPrefix(rest, []byte(lvl+" - ")) {
			return k + 2 + len(lvl) + 3
		}
		if bytes.Equal(rest, []byte(lvl+" -")) {
			return len(t)
		}
	}
	return 0
}

// isISOStamp reports whether t is nothing but an ISO-8601 date and time
// ("2024-03-05T10:12:06.0000000Z", "2024-03-05T10:12:06+00:00").
func isISOStamp(t []byte) bool {
	last := t[len(t)-1]
	if last != 'Z' && !isDigit(last) {
		return false
	}
	for _, c := range t {
		if !isDigit(c) && c != '-' && c != ':' && c != '.' && c != 'T' && c != 'Z' && c != '+' {
			return false
		}
	}
	return true
}

// goBuildState turns the "gobuild" state on at a "# pkg" header and off
// when tests start to run or report.
func (a *analysis) goBuildState(t []byte) {
	if len(t) < 3 {
		return
	}
	switch t[0] {
	case '#':
		if !a.goBuild && goPkgHeader(t) {
			a.goBuild = true
			a.states["gobuild"] = true
		}
	case '=', '-', 'o', 'P', 'F':
		if a.goBuild && (bytes.HasPrefix(t, []byte("=== ")) || bytes.HasPrefix(t, []byte("--- ")) ||
			bytes.HasPrefix(t, []byte("ok ")) || bytes.HasPrefix(t, []byte("PASS")) || bytes.HasPrefix(t, []byte("FAIL"))) {
			a.goBuild = false
			a.states["gobuild"] = false
		}
	}
}

// goPkgHeader reports whether t is the "# pkg" or "# pkg [pkg.test]" line
// that go build, go vet and go test print before a package's errors.
func goPkgHeader(t []byte) bool {
	if len(t) < 3 || t[0] != '#' || t[1] != ' ' {
		return false
	}
	t = t[2:]
	tok := func(b []byte) bool {
		if len(b) == 0 {
			return false
		}
		for _, c := range b {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '.' || c == '/' || c == '_' || c == '-' || c == '~') {
				return false
			}
		}
		return true
	}
	name, rest, ok := bytes.Cut(t, []byte(" "))
	if !ok {
		return tok(t)
	}
	return tok(name) && len(rest) > 2 && rest[0] == '[' && rest[len(rest)-1] == ']' && tok(rest[1:len(rest)-1])
}

// clockPrefix returns the length of a leading clock time and the one or
// two blanks after it: "H:MM:SS" or "HH:MM:SS", optional fractions, an optional
// " AM"/" PM" and an optional ":", then at least one space. It returns 0
// when the line does not start that way.
func clockPrefix(t []byte) int {
	i := 0
	for i < len(t) && i < 2 && isDigit(t[i]) {
		i++
	}
	if i == 0 || !twoDigitsAfterColon(t, i) || !twoDigitsAfterColon(t, i+3) {
		return 0
	}
	i += 6
	if i < len(t) && t[i] == '.' {
		i++
		for i < len(t) && isDigit(t[i]) {
			i++
		}
	}
	if i+3 <= len(t) && t[i] == ' ' && (t[i+1] == 'A' || t[i+1] == 'P') && t[i+2] == 'M' {
		i += 3
	}
	if i < len(t) && t[i] == ':' {
		i++
	}
	// dbt and others separate the clock with " | " ("12:03:30 | 1 of 2
	// START ..."), or print it alone with the bar.
	if i+2 < len(t) && t[i] == ' ' && t[i+1] == '|' && t[i+2] == ' ' {
		return i + 3
	}
	if i+2 == len(t) && t[i] == ' ' && t[i+1] == '|' {
		return len(t)
	}
	if i >= len(t) || t[i] != ' ' {
		return 0
	}
	// The separator is one or two blanks (Jenkins' timestamper prints
	// two); blanks after it are the line's own indentation (yamllint's
	// "  3:17  error ..." under its file name).
	for n := 0; i < len(t) && t[i] == ' ' && n < 2; n++ {
		i++
	}
	return i
}

func twoDigitsAfterColon(t []byte, i int) bool {
	return i+2 < len(t) && t[i] == ':' && isDigit(t[i+1]) && isDigit(t[i+2])
}

// isTimestamp reports whether b (the inside of "[...]") is a time or a
// date and time: digits with ':' and only '-', '.', 'T', 'Z', ' ', "AM",
// "PM" between them.
func isTimestamp(b []byte) bool {
	colon := false
	for i, c := range b {
		switch {
		case isDigit(c), c == '-', c == '.', c == 'T', c == 'Z', c == ' ':
		case c == ':':
			colon = true
		case (c == 'A' || c == 'P') && i+1 < len(b) && b[i+1] == 'M', c == 'M' && i > 0 && (b[i-1] == 'A' || b[i-1] == 'P'):
		default:
			return false
		}
	}
	return colon && isDigit(b[0])
}

// stripMarker removes a GitHub Actions log command ("##[error]",
// "##[group]"...) from the start of a line.
func stripMarker(t []byte) []byte {
	if bytes.HasPrefix(t, []byte("##[")) {
		if k := bytes.IndexByte(t[:min(len(t), 24)], ']'); k > 3 {
			return t[k+1:]
		}
	}
	return t
}

func isServiceName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// commandStates applies the state rules ("state:<name>") to a command the
// agent ran, as they apply to output lines: "$ terraform fmt -check" starts
// the list of unformatted files as a printed command line would. A state a
// command entered ends at the next command.
func (a *analysis) commandStates(cmd []byte) {
	for _, st := range a.cmdStates {
		a.states[st] = false
	}
	a.cmdStates = a.cmdStates[:0]
	for _, r := range a.e.rules {
		st, ok := strings.CutPrefix(r.Action, "state:")
		if !ok {
			st, ok = strings.CutPrefix(r.Action, "list:")
		}
		if !ok || r.re == nil || !r.re.Match(cmd) {
			continue
		}
		a.states[st] = true
		a.cmdStates = append(a.cmdStates, st)
	}
}

// goTestJSONOutput turns a line of "go test -json" into the text it
// carries: an "output" event becomes its Output (without the newline), any
// other event (run, pass, fail) becomes an empty line. ok is false for
// lines that are not test2json events.
func goTestJSONOutput(t []byte) ([]byte, bool) {
	if !bytes.HasPrefix(t, []byte(`{"Time":`)) && !bytes.HasPrefix(t, []byte(`{"Action":`)) {
		return nil, false
	}
	if !bytes.Contains(t, []byte(`"Action":"`)) {
		return nil, false
	}
	var ev struct {
		Action string
		Output *string
	}
	if json.Unmarshal(t, &ev) != nil || ev.Action == "" {
		return nil, false
	}
	if ev.Action != "output" || ev.Output == nil {
		return t[:0], true
	}
	return []byte(strings.TrimRight(*ev.Output, "\r\n")), true
}

// listState follows a list a line of printed output announced, like the
// files "terraform fmt -check" names after it is echoed.
type listState struct {
	items int // lines of the list seen
	gap   int // other lines seen before the first item
}

// maxListGap is how many other lines may come between the line that
// announces a list and its first item (a CI system's echo of the command).
const maxListGap = 4

// endLists ends the list states entered by printed output that the current
// (non-blank) line ends: a line that is not an item after the items, or
// too many lines before the first.
func (a *analysis) endLists() {
	for st, l := range a.lists {
		switch {
		case a.lineState == st:
			l.items++
		case l.items > 0 || l.gap >= maxListGap:
			a.states[st] = false
			delete(a.lists, st)
		default:
			l.gap++
		}
	}
}

// buildkitRecap follows BuildKit's recap of a failed step, which repeats the
// step's last output lines with its elapsed seconds before each:
//
//	------
//	 > [build 27/28] RUN cabal build:
//	14.02 Error: [Cabal-7107]
//	------
//
// Inside it, the seconds are removed so that the rules see the tool's line.
func (a *analysis) buildkitRecap(ln *logparse.Line) {
	t := ln.Text
	if a.recap {
		if bytes.HasPrefix(t, []byte("------")) {
			a.recap = false
			return
		}
		i := 0
		for i < len(t) && isDigit(t[i]) {
			i++
		}
		if i > 0 && i < len(t) && t[i] == '.' {
			j := i + 1
			for j < len(t) && isDigit(t[j]) {
				j++
			}
			if j > i+1 && j < len(t) && t[j] == ' ' {
				ln.Text = t[j+1:]
			}
		}
		return
	}
	if len(t) > 6 && t[len(t)-1] == ':' && bytes.HasPrefix(bytes.TrimLeft(t, " "), []byte("> [")) {
		a.recap = true
	}
}
