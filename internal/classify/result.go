package classify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// result turns the findings into the Result: titles, refinements, merging,
// fingerprints, the passing-log gate, the agent fallback, order and redaction.
func (a *analysis) result() Result {
	var fs []*finding
	for _, f := range a.found {
		if f.merged || f.resolved {
			continue
		}
		// A test summary ("FAIL pkg") before a retry that passed is about
		// the retried test.
		if f.secondary && f.category == Test && f.first < a.lastResolved {
			continue
		}
		a.finalize(f)
		fs = append(fs, f)
	}
	fs = mergeByTest(a, fs)
	fs = pruneParentTests(fs)
	fs = mergeByFingerprint(fs)

	// A Buildkite log whose command did not fail is a passing log: tools
	// print scary words in passing builds all the time, so say nothing,
	// except for failures that end a job without the agent's failure line.
	if a.agentSeen && !a.agentFailed && !a.opts.ignoreExitStatus {
		kept := fs[:0]
		for _, f := range fs {
			if f.rule.ID == "agent-lost" || f.rule.ID == "agent-stopped" || f.rule.ID == "cancelled" {
				kept = append(kept, f)
			}
		}
		fs = kept
	}

	var primary, secondary []*finding
	for _, f := range fs {
		if f.secondary {
			secondary = append(secondary, f)
		} else {
			primary = append(primary, f)
		}
	}
	out := primary
	if len(out) == 0 {
		out = secondary
		// Generic error lines late in the failed command's output are
		// more often its last noise than its cause: the first error-like
		// line after the command goes first.
		if a.agentFailed && a.exitOut.errLine > 0 && onlyGeneric(secondary, a.exitOut.errLine) {
			ef := a.exitFinding()
			ef.priority = PriorityUnknown + 1
			for _, f := range secondary {
				// A compiler-shaped "error: msg" with no location (rule
				// rustc) is generic too, whatever its rule's priority.
				ef.priority = max(ef.priority, f.priority+1)
			}
			out = append([]*finding{ef}, secondary...)
		}
	}
	if len(out) == 0 && a.agentFailed {
		out = []*finding{a.exitFinding()}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].priority != out[j].priority {
			return out[i].priority > out[j].priority
		}
		return out[i].first < out[j].first
	})
	if len(out) > a.opts.MaxFailures {
		out = out[:a.opts.MaxFailures]
	}
	res := Result{Failed: a.agentFailed || len(out) > 0}
	for _, f := range out {
		res.Failures = append(res.Failures, a.failure(f))
	}
	return res
}

func (a *analysis) finalize(f *finding) {
	r := f.rule
	if r.loc != nil {
		for _, l := range append(append([]string{}, f.before...), f.after...) {
			m := r.loc.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			vars := map[string]string{}
			for i, name := range r.loc.SubexpNames() {
				if name != "" && m[i] != "" {
					vars[strings.TrimRight(name, "23")] = m[i]
				}
			}
			if isLibraryPath(vars["path"]) || isLibraryFrame(vars["frame"]) {
				continue
			}
			if f.vars["locmsg"] == "" && vars["msg"] != "" {
				f.vars["locmsg"] = ": " + vars["msg"]
			}
			f.addLoc(a, vars)
		}
	}
	if r.tests != nil {
		k := r.tests.SubexpIndex("test")
		for _, l := range f.after {
			if m := r.tests.FindStringSubmatch(l); m != nil && k > 0 && m[k] != "" {
				f.addTests([]string{m[k]})
			}
		}
	}
	if r.msg != nil && f.vars["locmsg"] == "" {
		for _, l := range append(append([]string{}, f.before...), f.after...) {
			if m := r.msg.FindStringSubmatch(l); m != nil {
				if k := r.msg.SubexpIndex("msg"); k > 0 && strings.TrimSpace(m[k]) != "" {
					f.vars["locmsg"] = ": " + strings.TrimSpace(m[k])
					break
				}
			}
		}
	}
	if r.ID == "pytest" {
		if d := a.pyDetailFor(firstOr(f.tests, "")); d != nil {
			f.after = append(f.after, d.elines...)
			path := f.vars["path"]
			var best *Location
			for i := range d.locs {
				if strings.HasSuffix(path, d.locs[i].Path) || strings.HasSuffix(d.locs[i].Path, path) {
					best = &d.locs[i]
				}
			}
			if best == nil && len(d.locs) > 0 {
				best = &d.locs[len(d.locs)-1]
			}
			if best != nil {
				// The section's line beats the path-only location.
				for i := range f.locs {
					if f.locs[i].Path == best.Path && f.locs[i].Line == 0 {
						f.locs = append(f.locs[:i], f.locs[i+1:]...)
						break
					}
				}
				f.locs = append([]Location{*best}, f.locs...)
			}
			if f.vars["msg"] == "" && len(d.elines) > 0 {
				f.vars["msg"] = strings.TrimSpace(strings.TrimPrefix(d.elines[len(d.elines)-1], "E"))
			}
		}
	}
	if r.Action == "mocha" {
		mochaName(f)
	}
	if f.title == "" {
		f.title = a.titleOf(f)
	}
	// A path printed alone is redundant next to the same path with a line.
	locs := f.locs[:0]
	for _, l := range f.locs {
		if l.Line == 0 && hasLineFor(f.locs, l.Path) {
			continue
		}
		locs = append(locs, l)
	}
	f.locs = locs
	for _, ref := range r.Refine {
		var hit bool
		switch ref.In {
		case "line":
			hit = ref.re.MatchString(f.root[0])
		case "command":
			hit = ref.re.MatchString(f.command)
		default:
			for _, l := range f.excerpt(1 << 10) {
				if ref.re.MatchString(l) {
					hit = true
					break
				}
			}
		}
		if hit {
			f.category = ref.Category
			if ref.Primary {
				f.secondary = false
			}
			if ref.Secondary {
				f.secondary = true
			}
			break
		}
	}
	if r.RequireLoc && len(f.locs) == 0 {
		f.secondary, f.category, f.conf = true, Unknown, 0.3
	}
	if isGenericRule(r.ID) || r.ID == "problem-count" {
		a.genericLocation(f)
		if len(f.root) > 1 && isHeading(f.root[0], f.vars["msg"]) {
			f.title = headingTitle(f.root)
		}
	}
	// make's summary names the target that failed: its words say what
	// kind of step it was ("check-license-headers", "lint", "test").
	if r.ID == "make" && f.vars["target"] != "" {
		if c := commandCategory(strings.NewReplacer("-", " ", "_", " ").Replace(f.vars["target"])); c != Unknown {
			f.category = c
		}
	}
	if f.category == Unknown {
		f.category = inferCategory(f)
	}
	// A compiler-shaped diagnostic ("path:12:5: error: msg") printed by a
	// linter or formatter the failed command ran (clang-format --Werror,
	// ktlint through gradle, govulncheck's call stacks) is that tool's
	// finding, not a compile error.
	if f.category == Compile && !f.secondary {
		if c := commandCategory(f.command); c == Lint || c == Typecheck || c == Dependency && auditWords.MatchString(f.command) {
			f.category = c
		}
	}
}

func firstOr(ss []string, def string) string {
	if len(ss) > 0 {
		return ss[0]
	}
	return def
}

var templateVar = regexp.MustCompile(`\$\{(\w+)\}`)

// titleOf expands the rule's title template.
func (a *analysis) titleOf(f *finding) string {
	if f.title != "" {
		return f.title
	}
	t := templateVar.ReplaceAllStringFunc(f.rule.Title, func(v string) string {
		name := v[2 : len(v)-1]
		switch name {
		case "next":
			return nextLine(f.after)
		default:
			return f.vars[name]
		}
	})
	t = strings.Join(strings.Fields(t), " ")
	t = strings.TrimRight(strings.TrimSpace(t), ":- ")
	t = strings.ReplaceAll(t, " ()", "")
	if t == "" {
		t = f.vars["text"]
	}
	if len(t) > 200 {
		t = t[:197] + "..."
	}
	return t
}

var toolPrefix = regexp.MustCompile(`^\s*(?:npm (?:ERR!|error)|\[ERROR\]|[│|]|E |>|error:?)\s*`)

func nextLine(after []string) string {
	for _, l := range after {
		l = strings.TrimSpace(toolPrefix.ReplaceAllString(l, ""))
		if l != "" {
			return l
		}
	}
	return ""
}

// excerpt returns the root-cause lines, then the context, at most max lines.
func (f *finding) excerpt(max int) []string {
	out := make([]string, 0, min(max, len(f.root)+len(f.before)+len(f.after)))
	seen := map[string]bool{}
	for _, part := range [][]string{f.root, f.before, f.after} {
		for _, l := range part {
			if len(out) >= max {
				return out
			}
			if seen[l] && strings.TrimSpace(l) != "" {
				continue
			}
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// mergeByTest folds findings about the same test (a summary line and the
// detailed report) into the first, keeping the more informative title.
func mergeByTest(a *analysis, fs []*finding) []*finding {
	byTest := map[string]*finding{}
	out := fs[:0]
	for _, f := range fs {
		var into *finding
		if (f.category == Test || f.category == Timeout) && len(f.tests) > 0 {
			for _, t := range f.tests {
				if g := byTest[t]; g != nil {
					into = g
					break
				}
			}
		}
		if into == nil {
			for _, t := range f.tests {
				byTest[t] = f
			}
			out = append(out, f)
			continue
		}
		if len(f.title) > len(into.title) && !strings.HasPrefix(into.title, f.title) {
			into.title = f.title
		}
		into.root = append(into.root, f.root...)
		into.after = append(into.after, f.after...)
		for _, l := range f.locs {
			into.addLocation(l)
		}
		into.addTests(f.tests)
		into.last = max(into.last, f.last)
		into.first = min(into.first, f.first)
		if into.secondary && !f.secondary {
			into.secondary, into.priority, into.category = false, f.priority, f.category
		}
	}
	return out
}

func mergeByFingerprint(fs []*finding) []*finding {
	byFP := map[string]*finding{}
	out := fs[:0]
	for _, f := range fs {
		fp := fingerprint(f)
		if g := byFP[fp]; g != nil {
			for _, l := range f.locs {
				g.addLocation(l)
			}
			g.addTests(f.tests)
			g.last = max(g.last, f.last)
			continue
		}
		byFP[fp] = f
		out = append(out, f)
	}
	return out
}

var (
	fpHex      = regexp.MustCompile(`\b0x[0-9a-fA-F]+\b|\b[0-9a-f]{7,64}\b`)
	fpUUID     = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	fpTemp     = regexp.MustCompile(`(?:/tmp|/var/folders|/private/var|[A-Za-z]:\\Temp|/temp)/\S*`)
	fpTime     = regexp.MustCompile(`\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?`)
	fpDuration = regexp.MustCompile(`\b\d+(?:\.\d+)?\s?(?:ns|µs|us|ms|s|sec|secs|seconds|m|min|minutes|h)\b`)
	fpNumber   = regexp.MustCompile(`\d+`)
)

// normalizeVolatile removes the parts of a text that change between runs of
// the same failure: timestamps, UUIDs, temp paths, hashes, addresses,
// durations and numbers.
func normalizeVolatile(s string) string {
	s = fpTime.ReplaceAllString(s, "<time>")
	s = fpUUID.ReplaceAllString(s, "<uuid>")
	s = fpTemp.ReplaceAllString(s, "<tmp>")
	s = fpHex.ReplaceAllString(s, "<hex>")
	s = fpDuration.ReplaceAllString(s, "<dur>")
	s = fpNumber.ReplaceAllString(s, "N")
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

func fingerprint(f *finding) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", f.rule.ID, f.category, normalizeVolatile(f.title))
	if len(f.locs) > 0 {
		fmt.Fprintf(h, "%s\x00", normalizeVolatile(f.locs[0].Path))
	}
	for _, t := range f.tests {
		fmt.Fprintf(h, "%s\x00", normalizeVolatile(t))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// exitFinding is the fallback when the agent says the command failed and no
// rule explains why.
func (a *analysis) exitFinding() *finding {
	st := a.exitStatus
	f := &finding{
		rule: &compiledRule{Rule: Rule{ID: "exit-status"}}, category: Unknown, conf: 0.2,
		section: a.exitSection, first: a.exitLine, last: a.exitLine,
		title: fmt.Sprintf("Command exited with status %d", st),
	}
	switch {
	case st == 137:
		f.category, f.conf = OOM, 0.5
		f.title = "Command was killed (exit status 137, SIGKILL), most likely out of memory"
	case st == -1 || st == 143:
		f.category, f.conf = Infrastructure, 0.4
		f.title = "Command was interrupted by a signal (cancelled, timed out or the agent stopped)"
	case st == 124:
		f.category, f.conf = Timeout, 0.5
		f.title = "Command timed out (exit status 124)"
	case st == 127:
		f.category, f.conf = Config, 0.4
		f.title = "Command not found (exit status 127)"
	case st == 0 && a.exitText != "":
		// The agent failed the job for its own reasons, for example
		// "Error: Failed to upload artifacts".
		f.category, f.conf = Infrastructure, 0.4
		f.title = a.exitText
	}
	f.command = a.exitCommand
	f.root = []string{f.title}
	f.after = a.exitContext
	status := fmt.Sprintf("(the command exited with status %d)", st)
	out := a.exitOut
	switch {
	case out.errLine > 0:
		// The first error-like line of the failed command's output is
		// more often the cause than the last lines before it exited.
		f.root, f.first, f.section = out.err[:1], out.errLine, out.errSection
		msg := ""
		if i := strings.Index(out.err[0], ": "); i >= 0 {
			msg = out.err[0][i+2:]
		}
		if len(out.err) > 1 && isHeading(out.err[0], msg) {
			// "Unexpected error running Liquibase: Validation Failed:"
			// and "Error: P3009" announce the next line.
			f.root = out.err[:2]
		}
		f.after = append(out.err[len(f.root):len(out.err):len(out.err)], status)
	case len(out.first) > 0 && len(out.first) < fallbackLines && !strings.HasPrefix(out.first[len(out.first)-1], "+ "):
		// Short output: all of it (but a shell's "set -x" trace ends with
		// the command that failed).
		f.root = out.first[:1]
		f.after = append(out.first[1:len(out.first):len(out.first)], status)
	case len(a.exitContext) > 0:
		f.root = []string{a.exitContext[len(a.exitContext)-1]}
		f.after = append(a.exitContext[:len(a.exitContext)-1:len(a.exitContext)-1], status)
	}
	a.genericLocation(f)
	if out.errLine > 0 {
		f.title, f.conf = strings.TrimSpace(f.root[0]), f.conf+0.1
		if len(f.root) > 1 {
			f.title = headingTitle(f.root)
		}
	}
	if f.category == Unknown {
		f.category = inferCategory(f)
	}
	return f
}

// failure converts a finding to the public form, redacting secrets.
func (a *analysis) failure(f *finding) Failure {
	red := func(s string) string { return s }
	if a.opts.Redactor != nil {
		red = a.opts.Redactor.String
	}
	out := Failure{
		Category:    f.category,
		Title:       red(f.title),
		Section:     red(f.section),
		Fingerprint: fingerprint(f),
		Confidence:  f.conf,
		FirstLine:   f.first,
		LastLine:    f.last,
		Rule:        f.rule.ID,
	}
	for _, l := range f.excerpt(a.opts.MaxExcerptLines) {
		out.Excerpt = append(out.Excerpt, red(l))
	}
	for _, l := range f.locs {
		l.Path = red(l.Path)
		out.Locations = append(out.Locations, l)
	}
	for _, t := range f.tests {
		out.Tests = append(out.Tests, red(t))
	}
	return out
}

var buildDirRe = regexp.MustCompile(`^.*?/(?:buildkite-agent|buildkite)[^/]*/builds/[^/]+/[^/]+/[^/]+/|^/home/runner/work/[^/]+/[^/]+/|^/home/travis/build/[^/]+/[^/]+/|^/__w/[^/]+/[^/]+/|^/(?:workdir|app|workspace|src|code|repo|build|builds)/|^.*?/go/pkg/mod/|^/go/src/[^/]+/[^/]+/[^/]+/|^[A-Za-z]:\\buildkite-agent\\builds\\[^\\]+\\[^\\]+\\[^\\]+\\`)

// relPath makes a printed path repository-relative.
func relPath(p string, prefixes []string) string {
	p = strings.TrimPrefix(p, "file://")
	for _, pre := range prefixes {
		if pre != "" && strings.HasPrefix(p, pre) {
			p = strings.TrimPrefix(p[len(pre):], "/")
			break
		}
	}
	p = buildDirRe.ReplaceAllString(p, "")
	for strings.HasPrefix(p, "./") {
		p = p[2:]
	}
	return p
}

func isLibraryPath(p string) bool {
	return strings.Contains(p, "node_modules/") || strings.HasPrefix(p, "node:") || strings.HasPrefix(p, "internal/") ||
		strings.Contains(p, "site-packages/") || strings.Contains(p, "/rustc/") || strings.Contains(p, "/.cargo/registry/")
}

// pruneParentTests drops a Go test failure whose subtest also failed: the
// parent only fails because of the child.
func pruneParentTests(fs []*finding) []*finding {
	var names []string
	for _, f := range fs {
		if f.category == Test {
			names = append(names, f.tests...)
		}
	}
	out := fs[:0]
	for _, f := range fs {
		parent := len(f.tests) == 1 && f.category == Test
		if parent {
			parent = false
			for _, n := range names {
				if strings.HasPrefix(n, f.tests[0]+"/") {
					parent = true
					break
				}
			}
		}
		if !parent {
			out = append(out, f)
		}
	}
	return out
}

func hasLineFor(locs []Location, path string) bool {
	for _, l := range locs {
		if l.Path == path && l.Line > 0 {
			return true
		}
	}
	return false
}

// isLibraryFrame reports whether a JVM frame belongs to the JDK, a test
// framework or a build tool rather than the project.
func isLibraryFrame(frame string) bool {
	for _, p := range []string{"java.", "javax.", "jdk.", "sun.", "kotlin.", "kotlinx.", "scala.", "groovy.", "org.junit.", "junit.", "org.opentest4j.", "org.assertj.", "org.hamcrest.", "org.mockito.", "org.gradle.", "org.apache.maven.", "org.testng.", "org.spockframework.", "worker.org.gradle."} {
		if strings.HasPrefix(frame, p) {
			return true
		}
	}
	return false
}

// mochaName completes a mocha failure's test name: mocha prints the suite on
// the numbered line and nested titles on the following lines, the last one
// ending with a colon.
func mochaName(f *finding) {
	name := strings.TrimSuffix(strings.TrimSpace(f.vars["test"]), ":")
	if strings.HasSuffix(strings.TrimSpace(f.vars["test"]), ":") {
		return
	}
	for i, l := range f.after {
		l = strings.TrimSpace(l)
		if l == "" || i > 4 {
			break
		}
		name += " " + strings.TrimSuffix(l, ":")
		if strings.HasSuffix(l, ":") {
			f.after = f.after[i+1:]
			f.vars["test"] = name
			f.tests = []string{name}
			return
		}
	}
}
