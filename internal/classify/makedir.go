package classify

import (
	"bytes"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/kitewatch/kitewatch/internal/logparse"
)

// makeDirVar is the finding variable that holds the directory make was in
// when the finding started; relative locations are joined to it.
const makeDirVar = "_makedir"

// makePendingVar marks a finding that started while parallel sub-makes
// (make -j) had several sibling directories open: its relative locations
// are left as printed until make says which directory failed (see
// resolveMakeDir). Its value lists the open directories, one per line.
const makePendingVar = "_makepending"

// maxMakeDirs bounds the directory stack (make nests a few levels).
const maxMakeDirs = 32

// makeDirEntry is one directory on make's stack: as printed, and
// repository-relative ("" for the repository root).
type makeDirEntry struct{ raw, rel string }

// makeDir follows GNU make's "Entering directory" and "Leaving directory"
// lines (printed with -w and for every recursive make -C).
func (a *analysis) makeDir(enter bool, dir string) {
	n := len(a.makeDirs)
	if enter {
		if n >= maxMakeDirs {
			return
		}
		e := makeDirEntry{raw: dir}
		if n > 0 && a.makeDirs[n-1].raw == dir {
			e.rel = a.makeDirs[n-1].rel // a repeated enter: no need to recompute
		} else if e.rel = relPath(dir, a.opts.RepoPrefixes); e.rel == "." {
			e.rel = ""
		}
		a.makeDirs = append(a.makeDirs, e)
		return
	}
	// Leave the innermost matching directory; an unmatched leave (the
	// enter was cut off) leaves the stack alone.
	for i := n - 1; i >= 0; i-- {
		if a.makeDirs[i].raw != dir {
			continue
		}
		if a.parallelMake() {
			a.resolveMakeDir(a.makeDirs[i])
		}
		// Directories entered after this one and not under it are
		// parallel siblings (make -j) that are still open.
		keep := a.makeDirs[:i]
		for _, e := range a.makeDirs[i+1:] {
			if !underDir(e.raw, dir) {
				keep = append(keep, e)
			}
		}
		a.makeDirs = keep
		return
	}
}

// underDir reports whether directory d is dir or below it.
func underDir(d, dir string) bool {
	dir = strings.TrimSuffix(dir, "/")
	return d == dir || len(d) > len(dir) && d[len(dir)] == '/' && strings.HasPrefix(d, dir)
}

// parallelMake reports whether the innermost directory is not below the one
// entered before it: sequential recursive makes leave a directory before
// entering a sibling, so this is make -j interleaving sibling sub-makes,
// and which of them printed a line is unknown.
func (a *analysis) parallelMake() bool {
	n := len(a.makeDirs)
	return n >= 2 && !underDir(a.makeDirs[n-1].raw, a.makeDirs[n-2].raw)
}

// currentMakeDir returns the directory make is in, repository-relative, or
// "" outside any make directory, at the repository root, or when parallel
// sub-makes make it ambiguous.
func (a *analysis) currentMakeDir() string {
	if len(a.makeDirs) == 0 || a.parallelMake() {
		return ""
	}
	return a.makeDirs[len(a.makeDirs)-1].rel
}

// openMakeDirs lists the directories on make's stack, one per line.
func (a *analysis) openMakeDirs() string {
	var b strings.Builder
	for _, e := range a.makeDirs {
		b.WriteString(e.raw)
		b.WriteByte('\n')
	}
	return b.String()
}

// resolveMakeDir runs when parallel sub-makes leave directory e. GNU make
// prints a failing sub-make's "make[N]: *** [...] Error" line right before
// its "Leaving directory": then e is the directory that failed, and the
// relative locations of the findings that started while e was open join it.
func (a *analysis) resolveMakeDir(e makeDirEntry) {
	if a.n == 0 {
		return
	}
	prev := a.ring[(a.n-1)%ringSize].text
	if !bytes.HasPrefix(prev, []byte("make")) || !bytes.Contains(prev, []byte(": *** ")) {
		return
	}
	for _, f := range a.found {
		open, ok := f.vars[makePendingVar]
		if !ok || !strings.Contains(open, e.raw+"\n") {
			continue
		}
		rel := f.vars[makeRelVar]
		delete(f.vars, makePendingVar)
		delete(f.vars, makeRelVar)
		for i, l := range f.locs {
			if strings.Contains(rel, "\n"+l.Path+"\n") {
				f.locs[i].Path = inMakeDir(e.rel, l.Path)
			}
		}
	}
}

// makeRelVar lists, one per line, the locations of a pending finding (see
// makePendingVar) that were printed as relative paths: only those join the
// directory that failed.
const makeRelVar = "_makerel"

// notePendingLoc remembers that location path p of finding f, added while
// parallel sub-makes were ambiguous, was printed relative.
func (a *analysis) notePendingLoc(f *finding, vars map[string]string, p string) {
	if f.vars == nil || vars[makeDirVar] != "" {
		return
	}
	if _, ok := f.vars[makePendingVar]; !ok {
		return
	}
	printed := vars["path"]
	if printed == "" || strings.HasPrefix(printed, "/") || strings.Contains(printed, "://") || (len(printed) > 1 && printed[1] == ':') {
		return
	}
	rel := f.vars[makeRelVar]
	if rel == "" {
		rel = "\n"
	}
	f.vars[makeRelVar] = rel + p + "\n"
}

// inMakeDir joins a relative path printed by a tool that make ran in dir.
// Absolute paths, URLs and paths already under dir are returned unchanged.
func inMakeDir(dir, p string) string {
	if dir == "" || p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "://") ||
		strings.HasPrefix(p, dir+"/") || (len(p) > 1 && p[1] == ':') {
		return p
	}
	if strings.HasPrefix(dir, "/") && strings.HasPrefix(path.Clean(p), "..") {
		return p
	}
	return path.Join(dir, p)
}

var rubocopHeader = regexp.MustCompile(`^== (\S+) ==$`)

// rubocopPath finds the "== path ==" header that rubocop's simple format
// prints above a file's offenses.
func (a *analysis) rubocopPath() string {
	for i := 1; i < ringSize && i <= a.n; i++ {
		rl := &a.ring[(a.n-i)%ringSize]
		if rl.kind != logparse.KindText {
			return ""
		}
		if m := rubocopHeader.FindSubmatch(rl.text); m != nil {
			return string(m[1])
		}
	}
	return ""
}

// monorepoTaskPrefix returns the length of a Turborepo-style task prefix
// ("web:lint: ", "@acme/ui:build: ") at the start of t, or 0. The task part
// must start with a lower-case letter, so "file.go:12: " is never a prefix,
// and the prefix must end in ": " or end the line.
func monorepoTaskPrefix(t []byte) int {
	end := min(len(t), 80)
	i := 0
	for i < end && isPkgByte(t[i]) {
		i++
	}
	if i == 0 || i+1 >= end || t[i] != ':' || !(t[i+1] >= 'a' && t[i+1] <= 'z') {
		return 0
	}
	i++
	for i < end && (t[i] >= 'a' && t[i] <= 'z' || t[i] >= '0' && t[i] <= '9' || t[i] == '-' || t[i] == '_' || t[i] == ':') {
		i++
	}
	switch {
	case t[i-1] != ':':
		return 0
	case i == len(t):
		return i
	case t[i] == ' ':
		return i + 1
	}
	return 0
}

// nixLogPrefix returns the length of the "pname> " prefix that nix-build
// (--log-format bar-with-logs, nix build -L) puts before each line of a
// derivation's build log, or 0.
func nixLogPrefix(t []byte) int {
	end := min(len(t), 64)
	i := 0
	for i < end && (isPkgByte(t[i]) && t[i] != '/' && t[i] != '@' || t[i] == '+') {
		i++
	}
	if i < 2 || i+1 >= len(t) || t[i] != '>' || t[i+1] != ' ' {
		return 0
	}
	return i + 2
}

func isPkgByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '@' || c == '/'
}

// pytestLine remembers a pytest --tb=line failure ("path.py:12: Error:
// msg"), printed without a section header, under the key of its file.
func (a *analysis) pytestLine(file, line string) {
	p := relPath(file, a.opts.RepoPrefixes)
	key := "file:" + p
	d := a.pyDetails[key]
	if d == nil {
		if len(a.pyOrder) >= maxPytestDetails {
			delete(a.pyDetails, a.pyOrder[0])
			a.pyOrder = a.pyOrder[1:]
		}
		d = &pyDetail{}
		a.pyDetails[key] = d
		a.pyOrder = append(a.pyOrder, key)
	}
	if n, err := strconv.Atoi(line); err == nil && len(d.locs) < 6 {
		d.locs = append(d.locs, Location{Path: p, Line: n})
	}
}

// parseMakeDirLine recognises GNU make's "make[1]: Entering directory
// '/path'" and "Leaving directory" lines without a regexp: C builds print
// one for every sub-make, so they are among the most common candidate lines
// of all. It accepts exactly what the make-enter-dir and make-leave-dir
// rules' patterns accept.
func parseMakeDirLine(line []byte) (dir []byte, enter, ok bool) {
	s := line
	if len(s) > 0 && s[0] == 'g' {
		s = s[1:]
	}
	if !bytes.HasPrefix(s, []byte("make")) {
		return nil, false, false
	}
	s = s[4:]
	if len(s) > 0 && s[0] == '[' {
		i := 1
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 1 || i >= len(s) || s[i] != ']' {
			return nil, false, false
		}
		s = s[i+1:]
	}
	switch {
	case bytes.HasPrefix(s, []byte(": Entering directory ")):
		s, enter = s[len(": Entering directory "):], true
	case bytes.HasPrefix(s, []byte(": Leaving directory ")):
		s = s[len(": Leaving directory "):]
	default:
		return nil, false, false
	}
	if len(s) < 3 || (s[0] != '\'' && s[0] != '`') || s[len(s)-1] != '\'' {
		return nil, false, false
	}
	dir = s[1 : len(s)-1]
	if len(dir) == 0 || bytes.IndexAny(dir, "'`") >= 0 {
		return nil, false, false
	}
	return dir, enter, true
}
