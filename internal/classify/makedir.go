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
		if a.makeDirs[i].raw == dir {
			a.makeDirs = a.makeDirs[:i]
			return
		}
	}
}

// currentMakeDir returns the directory make is in, repository-relative, or
// "" outside any make directory or at the repository root.
func (a *analysis) currentMakeDir() string {
	if len(a.makeDirs) == 0 {
		return ""
	}
	return a.makeDirs[len(a.makeDirs)-1].rel
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
