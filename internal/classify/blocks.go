package classify

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"

	"github.com/kitewatch/kitewatch/internal/logparse"
)

// blockCollector gathers a multi-line structure (a traceback, a goroutine
// dump, a race report) that a single-line rule cannot describe. feed returns
// true when the block is complete; the line that ends it is not consumed by
// the block's finding but is still pushed to the context ring.
type blockCollector interface {
	feed(a *analysis, ln *logparse.Line) (done bool)
	finish(a *analysis)
}

// maxBlockLines bounds how long a block may grow before it is closed.
const maxBlockLines = 400

func (a *analysis) startBlock(kind string, f *finding) {
	// A block right after a test failure line explains that test.
	var parent *finding
	if len(a.found) > 0 {
		prev := a.found[len(a.found)-1]
		if prev.category == Test && !prev.resolved && f.first-prev.last <= 4 {
			parent = prev
		}
	}
	if a.open != nil && a.open.category == Test {
		parent = a.open
	}
	switch kind {
	case "traceback":
		a.block = &tracebackBlock{f: f, parent: parent}
	case "gopanic":
		a.block = &goPanicBlock{f: f, parent: parent, msg: f.vars["msg"] + f.vars["fatal"]}
	case "gorace":
		a.block = &goRaceBlock{f: f}
	}
}

func (a *analysis) finishBlock() {
	b := a.block
	a.block = nil
	b.finish(a)
}

// absorb merges a block's finding into the test failure it explains.
func (a *analysis) absorb(parent, f *finding) {
	parent.title = a.titleOf(parent) + ": " + f.title
	parent.root = append(parent.root, f.root...)
	parent.after = append(parent.after, f.after...)
	for _, l := range f.locs {
		parent.addLocation(l)
	}
	parent.addTests(f.tests)
	if f.last > parent.last {
		parent.last = f.last
	}
	if f.category == Timeout || f.category == OOM {
		parent.category = f.category
	}
	f.merged = true
	a.index(parent)
}

var (
	pyFrameRe  = regexp.MustCompile(`^\s*File "([^"]+)", line (\d+)`)
	pyExcRe    = regexp.MustCompile(`^(?:[\w.]+\.)?(\w+)(?::|$)`)
	goFrameRe  = regexp.MustCompile(`^\s+(\S+\.go):(\d+)`)
	goTestFnRe = regexp.MustCompile(`\.(Test\w+|Benchmark\w+|Fuzz\w+|Example\w+)(?:\.func\d+)*(?:\.\d+)*\(`)
	// goFailAfter is the panic of a test's goroutine that reported a failure
	// after the test had returned.
	goFailAfter = regexp.MustCompile(`^(?:Fail|Log) in goroutine after (\S+) has completed`)
	goRunning   = regexp.MustCompile(`^\s+(Test\S+|Benchmark\S+|Fuzz\S+) \(`)
)

// tracebackBlock collects a Python traceback up to its exception line.
type tracebackBlock struct {
	f      *finding
	parent *finding
	lines  []string
	frames []Location
	n      int
}

func (b *tracebackBlock) feed(a *analysis, ln *logparse.Line) bool {
	b.n++
	t := ln.Text
	if ln.Kind != logparse.KindText || b.n > maxBlockLines {
		return true
	}
	if m := pyFrameRe.FindSubmatch(t); m != nil {
		n, _ := strconv.Atoi(string(m[2]))
		b.frames = append(b.frames, Location{Path: string(m[1]), Line: n})
		if len(b.frames) > 64 {
			b.frames = b.frames[1:]
		}
	}
	if isIndented(t) || isBlank(t) {
		b.keep(t)
		return false
	}
	// The first unindented line is the exception.
	b.f.title = strings.TrimSpace(string(t))
	b.f.root = []string{excerptLine(t)}
	b.f.last = ln.Number
	return true
}

func (b *tracebackBlock) keep(t []byte) {
	b.lines = append(b.lines, excerptLine(t))
	if len(b.lines) > 24 {
		b.lines = b.lines[1:]
	}
}

func (b *tracebackBlock) finish(a *analysis) {
	f := b.f
	if f.title == "" {
		f.title = "Python traceback"
	}
	f.after = append([]string{"Traceback (most recent call last):"}, b.lines...)
	if loc, ok := pickFrame(b.frames, isPythonLibrary); ok {
		f.addLocation(Location{Path: relPath(loc.Path, a.opts.RepoPrefixes), Line: loc.Line})
	}
	exc := ""
	if m := pyExcRe.FindStringSubmatch(f.title); m != nil {
		exc = m[1]
	}
	switch {
	case exc == "ModuleNotFoundError" || exc == "ImportError":
		f.category, f.priority = Dependency, PriorityDependency-5
	case exc == "MemoryError":
		f.category, f.priority = OOM, PriorityInfra
	case exc == "TimeoutError" || exc == "ReadTimeout" || exc == "ConnectTimeout" || exc == "TimeoutExpired":
		f.category, f.priority = Timeout, PriorityCrash
	case strings.Contains(exc, "Connection") || exc == "URLError" || exc == "gaierror" || exc == "MaxRetryError" || exc == "SSLError":
		f.category, f.priority = Network, PriorityDependency
	case exc == "SyntaxError" || exc == "IndentationError":
		f.category, f.priority = Compile, PriorityCompile
	case exc == "AssertionError":
		f.category, f.priority = Test, PriorityTest
	case exc == "KeyboardInterrupt":
		f.category = Infrastructure
	}
	if b.parent != nil {
		a.absorb(b.parent, f)
	}
}

func isPythonLibrary(p string) bool {
	return strings.Contains(p, "site-packages/") || strings.Contains(p, "dist-packages/") ||
		strings.HasPrefix(p, "<") || strings.Contains(p, "/lib/python") || strings.Contains(p, "/.pyenv/")
}

// pickFrame returns the innermost frame that is not library code, or the
// innermost frame when all are.
func pickFrame(frames []Location, library func(string) bool) (Location, bool) {
	for i := len(frames) - 1; i >= 0; i-- {
		if !library(frames[i].Path) {
			return frames[i], true
		}
	}
	if len(frames) > 0 {
		return frames[len(frames)-1], true
	}
	return Location{}, false
}

// goPanicBlock collects a Go panic and its first goroutine's stack.
type goPanicBlock struct {
	f       *finding
	parent  *finding
	msg     string
	n       int
	inStack bool
	locDone bool
	running bool
}

func (b *goPanicBlock) feed(a *analysis, ln *logparse.Line) bool {
	b.n++
	t := ln.Text
	if ln.Kind != logparse.KindText || b.n > maxBlockLines {
		return true
	}
	if bytes.HasPrefix(t, []byte("FAIL")) || bytes.HasPrefix(t, []byte("exit status")) || bytes.HasPrefix(t, []byte("ok ")) {
		return true
	}
	if bytes.HasPrefix(bytes.TrimSpace(t), []byte("running tests:")) {
		b.running = true
	} else if b.running {
		if m := goRunning.FindSubmatch(t); m != nil {
			b.f.addTests([]string{string(m[1])})
		} else {
			b.running = false
		}
	}
	if bytes.HasPrefix(t, []byte("goroutine ")) {
		if b.inStack {
			return true // only the first goroutine matters
		}
		b.inStack = true
	}
	if b.inStack && isBlank(t) {
		return true
	}
	if len(b.f.after) < 24 && !isBlank(t) {
		b.f.after = append(b.f.after, excerptLine(t))
	}
	b.f.last = ln.Number
	if b.inStack {
		if m := goTestFnRe.FindSubmatch(t); m != nil && len(b.f.tests) == 0 {
			b.f.addTests([]string{string(m[1])})
		}
		if m := goFrameRe.FindSubmatch(t); m != nil && !b.locDone && !isGoLibrary(string(m[1])) {
			n, _ := strconv.Atoi(string(m[2]))
			b.f.addLocation(Location{Path: relPath(string(m[1]), a.opts.RepoPrefixes), Line: n})
			b.locDone = true
		}
	}
	return false
}

func (b *goPanicBlock) finish(a *analysis) {
	f := b.f
	msg := strings.TrimSuffix(b.msg, " [recovered]")
	f.title = "panic: " + msg
	switch {
	case strings.HasPrefix(msg, "test timed out after"):
		f.category, f.title = Timeout, "Go "+msg
	case strings.Contains(msg, "out of memory"):
		f.category, f.priority = OOM, PriorityInfra
	case goFailAfter.MatchString(msg):
		f.tests = nil
		f.addTests([]string{goFailAfter.FindStringSubmatch(msg)[1]})
		f.category = Test
	case len(f.tests) > 0:
		f.category = Test
	}
	if b.parent != nil {
		a.absorb(b.parent, f)
		return
	}
	a.index(f)
}

// isGoLibrary reports whether p is in the Go standard library or the module
// cache rather than the repository.
func isGoLibrary(p string) bool {
	if strings.Contains(p, "/pkg/mod/") || strings.Contains(p, "/vendor/") {
		return true
	}
	i := strings.Index(p, "/src/")
	if i < 0 || !strings.Contains(p[:i+1], "go") {
		return false
	}
	rest := p[i+5:]
	first, _, _ := strings.Cut(rest, "/")
	return !strings.Contains(first, ".")
}

// goRaceBlock collects a race detector report up to its closing rule line.
type goRaceBlock struct {
	f       *finding
	n       int
	fn      string
	prev    string
	locDone bool
}

func (b *goRaceBlock) feed(a *analysis, ln *logparse.Line) bool {
	b.n++
	t := ln.Text
	if ln.Kind != logparse.KindText || b.n > maxBlockLines || bytes.HasPrefix(t, []byte("==================")) {
		return true
	}
	if len(b.f.after) < 24 && !isBlank(t) {
		b.f.after = append(b.f.after, excerptLine(t))
	}
	b.f.last = ln.Number
	if m := goTestFnRe.FindSubmatch(t); m != nil && len(b.f.tests) == 0 {
		b.f.addTests([]string{string(m[1])})
	}
	if m := goFrameRe.FindSubmatch(t); m != nil && !b.locDone && !isGoLibrary(string(m[1])) {
		n, _ := strconv.Atoi(string(m[2]))
		b.f.addLocation(Location{Path: relPath(string(m[1]), a.opts.RepoPrefixes), Line: n})
		b.locDone = true
		if i := strings.LastIndexByte(b.prev, '('); i > 0 {
			b.fn = b.prev[:i]
		}
	}
	b.prev = strings.TrimSpace(string(t))
	return false
}

func (b *goRaceBlock) finish(a *analysis) {
	b.f.title = "Data race"
	if b.fn != "" {
		b.f.title = "Data race in " + b.fn
	}
	a.index(b.f)
}
