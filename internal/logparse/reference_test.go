package logparse

// This file keeps the parser as it was before the reader and the fast paths
// were rewritten for speed, as a reference: the differential tests and
// FuzzParse check that the current parser returns exactly the same lines.

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// refParser reads a job log line by line. Create one with New.
type refParser struct {
	br      *bufio.Reader
	max     int
	keepRaw bool
	line    Line
	long    []byte
	text    []byte
	section string
	err     error
	done    bool
}

// New returns a refParser reading r. It never reads more than one buffer ahead.
func refNew(r io.Reader, opts Options, size int) *refParser {
	max := opts.MaxLineLength
	if max <= 0 {
		max = DefaultMaxLineLength
	}
	if size < max+1 {
		size = max + 1
	}
	return &refParser{
		br:      bufio.NewReaderSize(r, size),
		max:     max,
		keepRaw: opts.KeepRaw,
		text:    make([]byte, 0, 512),
	}
}

// Next advances to the next line and reports whether there is one. It returns
// false at the end of the input or on a read error (see Err).
func (p *refParser) Next() bool {
	if p.done {
		return false
	}
	raw, truncated, ok := p.readLine()
	if !ok {
		p.done = true
		return false
	}
	p.line.Number++
	p.line.Truncated = truncated
	p.line.Kind = KindText
	p.line.ExitStatus = 0
	p.line.Timestamp = 0
	if p.keepRaw {
		p.line.Raw = raw
	} else {
		p.line.Raw = nil
	}
	if text, ts, ok := refPlainAfterTimestamp(raw); ok {
		// The common line: a timestamp then plain text, used in place.
		p.line.Text, p.line.Timestamp = text, ts
	} else {
		p.text, p.line.Timestamp = refAppendPlain(p.text[:0], raw)
		p.line.Text = p.text
	}
	p.classify()
	p.line.Section = p.section
	return true
}

// Line returns the current line. It is only valid after Next returned true,
// and only until the next call to Next.
func (p *refParser) Line() *Line { return &p.line }

// Err returns the first read error other than io.EOF.
func (p *refParser) Err() error { return p.err }

// readLine returns the next line without its terminator, capped at p.max.
func (p *refParser) readLine() (raw []byte, truncated, ok bool) {
	line, err := p.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		// A line longer than the buffer: keep the first p.max bytes and
		// discard the rest up to the newline.
		p.long = append(p.long[:0], line[:min(len(line), p.max)]...)
		truncated = len(line) > p.max
		for err == bufio.ErrBufferFull {
			line, err = p.br.ReadSlice('\n')
			if room := p.max - len(p.long); room > 0 {
				n := min(room, len(line))
				p.long = append(p.long, line[:n]...)
				if n < len(line) {
					truncated = true
				}
			} else if len(line) > 0 && !(len(line) == 1 && line[0] == '\n') {
				truncated = true
			}
		}
		line = p.long
	}
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		p.err = err
	}
	if len(line) == 0 && err != nil {
		return nil, false, false
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > p.max {
		line = line[:p.max]
		truncated = true
	}
	return line, truncated, true
}

// classify sets the line's kind, exit status and, for headers, the section.
func (p *refParser) classify() {
	t := p.line.Text
	if len(t) < 2 {
		return
	}
	switch t[0] {
	case '-', '+', '~':
		if refIsHeader(t) {
			p.line.Kind = KindGroup
			title := bytes.TrimSpace(t[4:])
			if string(title) != p.section {
				p.section = string(title)
			}
		}
	case '^':
		if bytes.HasPrefix(t, []byte("^^^ +++")) {
			p.line.Kind = KindReopen
		}
	case '$':
		if t[1] == ' ' {
			p.line.Kind = KindCommand
		}
	case 'u':
		if bytes.HasPrefix(t, userCommandError) {
			p.line.Kind = KindExitStatus
			p.line.ExitStatus = refAtoi(t[len(userCommandError):])
		}
	case 0xf0, 'E':
		s, sirened := bytes.CutPrefix(t, siren)
		switch {
		case bytes.HasPrefix(s, agentExited):
			p.line.Kind = KindAgentFailure
			p.line.ExitStatus = refAtoi(s[len(agentExited):])
		case bytes.HasPrefix(s, agentInterrupted):
			p.line.Kind = KindAgentFailure
			p.line.ExitStatus = -1
		case sirened && bytes.HasPrefix(s, []byte("Error: ")):
			// Hooks and plugins fail with their own wording, for example
			// "🚨 Error: The pre-command hook exited with status 1".
			p.line.Kind = KindAgentFailure
			if i := bytes.Index(s, []byte("exited with status ")); i >= 0 {
				p.line.ExitStatus = refAtoi(s[i+len("exited with status "):])
			}
		}
	}
}

// isHeader reports whether t is a group header. Go test results ("--- FAIL:")
// and unified diff headers ("--- a/x", "+++ b/x") look like headers but are
// output, so they are excluded.
func refIsHeader(t []byte) bool {
	if len(t) < 5 || t[3] != ' ' || t[1] != t[0] || t[2] != t[0] {
		return false
	}
	rest := t[4:]
	if t[0] == '~' {
		return true
	}
	for _, p := range [...]string{"FAIL", "PASS", "SKIP", "BENCH", "a/", "b/", "/dev/null", "/", "./"} {
		if bytes.HasPrefix(rest, []byte(p)) {
			return false
		}
	}
	// Diff headers carry a tab before a timestamp.
	return bytes.IndexByte(rest, '\t') < 0
}

// atoi parses the leading decimal digits of b; it returns 0 when there are none.
func refAtoi(b []byte) int {
	n := 0
	for i := 0; i < len(b) && i < 9 && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int(b[i]-'0')
	}
	return n
}

// maxStringEscape bounds the search for the end of an APC or OSC string so
// that an unterminated one costs little.

// appendPlain appends the visible text of raw to dst and returns it with the
// first Buildkite timestamp found (0 if none). Escape sequences and carriage
// returns are found with IndexByte, so plain runs are copied in bulk; other
// control characters (tabs, a stray BEL or backspace) are kept as data.
func refAppendPlain(dst, raw []byte) ([]byte, int64) {
	var ts int64
	reset := false
	i := 0
	for i < len(raw) {
		j := refNextSpecial(raw[i:])
		if j < 0 {
			j = len(raw) - i
		}
		if j > 0 {
			if reset {
				dst = dst[:0]
				reset = false
			}
			dst = append(dst, raw[i:i+j]...)
			i += j
			if i >= len(raw) {
				break
			}
		}
		switch raw[i] {
		case '\r':
			// A carriage return rewinds to column 0: the next visible text
			// replaces what came before, so the last segment wins.
			reset = true
			i++
		default: // ESC
			var r bool
			var t int64
			i, r, t = refEscape(raw, i)
			if r {
				reset = true
			}
			if ts == 0 && t > 0 {
				ts = t
			}
		}
	}
	for len(dst) > 0 && (dst[len(dst)-1] == ' ' || dst[len(dst)-1] == '\t') {
		dst = dst[:len(dst)-1]
	}
	return dst, ts
}

// plainAfterTimestamp handles the most common line, "ESC_bk;t=<ms>BEL" then
// text without escapes or carriage returns, without copying.
func refPlainAfterTimestamp(raw []byte) (text []byte, ts int64, ok bool) {
	if !bytes.HasPrefix(raw, bkPrefix) {
		return nil, 0, false
	}
	end := bytes.IndexByte(raw[len(bkPrefix):min(len(raw), len(bkPrefix)+20)], 0x07)
	if end <= 0 {
		return nil, 0, false
	}
	end += len(bkPrefix)
	rest := raw[end+1:]
	if bytes.IndexByte(rest, 0x1b) >= 0 || bytes.IndexByte(rest, '\r') >= 0 {
		return nil, 0, false
	}
	for _, c := range raw[len(bkPrefix):end] {
		if c < '0' || c > '9' {
			return nil, 0, false
		}
		ts = ts*10 + int64(c-'0')
	}
	for len(rest) > 0 && (rest[len(rest)-1] == ' ' || rest[len(rest)-1] == '\t') {
		rest = rest[:len(rest)-1]
	}
	return rest, ts, true
}

// nextSpecial returns the index of the first ESC or carriage return in b, or
// -1.
func refNextSpecial(b []byte) int {
	e := bytes.IndexByte(b, 0x1b)
	if e == 0 {
		return 0
	}
	limit := b
	if e > 0 {
		limit = b[:e]
	}
	if r := bytes.IndexByte(limit, '\r'); r >= 0 {
		return r
	}
	return e
}

// escape consumes the escape sequence at raw[i] (an ESC) and returns the
// index after it, whether it rewinds the line (erase line or cursor to column
// 1), and a Buildkite timestamp if it was one. A malformed sequence consumes
// only the ESC, so the bytes after it are kept as data.
func refEscape(raw []byte, i int) (next int, rewind bool, ts int64) {
	if i+1 >= len(raw) {
		return i + 1, false, 0
	}
	switch raw[i+1] {
	case '[':
		k := i + 2
		for k < len(raw) && raw[k] >= 0x30 && raw[k] <= 0x3f {
			k++
		}
		params := raw[i+2 : k]
		for k < len(raw) && raw[k] >= 0x20 && raw[k] <= 0x2f {
			k++
		}
		if k >= len(raw) || raw[k] < 0x40 || raw[k] > 0x7e {
			return i + 1, false, 0
		}
		switch raw[k] {
		case 'K':
			rewind = len(params) == 1 && (params[0] == '1' || params[0] == '2')
		case 'G':
			rewind = len(params) == 0 || (len(params) == 1 && (params[0] == '0' || params[0] == '1'))
		}
		return k + 1, rewind, 0
	case '_', ']', 'P', '^', 'X':
		end, after := refStringEnd(raw, i+2)
		if end < 0 {
			return i + 1, false, 0
		}
		if raw[i+1] == '_' {
			ts = refBkTimestamp(raw[i+2 : end])
		}
		return after, false, 0 + ts
	case '(', ')', '*', '+':
		if i+2 < len(raw) && raw[i+2] >= 0x20 && raw[i+2] < 0x7f {
			return i + 3, false, 0
		}
		return i + 2, false, 0
	default:
		if raw[i+1] >= 0x20 && raw[i+1] < 0x7f {
			return i + 2, false, 0
		}
		return i + 1, false, 0
	}
}

// stringEnd finds the terminator (BEL or ESC \) of a string escape whose
// content starts at from. It returns the content end and the index after the
// terminator, or -1 when there is none within maxStringEscape bytes.
func refStringEnd(raw []byte, from int) (end, after int) {
	limit := min(len(raw), from+maxStringEscape)
	for k := from; k < limit; k++ {
		switch raw[k] {
		case 0x07:
			return k, k + 1
		case 0x1b:
			if k+1 < len(raw) && raw[k+1] == '\\' {
				return k, k + 2
			}
			return -1, -1
		}
	}
	return -1, -1
}

// bkTimestamp returns the t= value of a "bk;..." APC payload, or 0.
func refBkTimestamp(apc []byte) int64 {
	rest, ok := bytes.CutPrefix(apc, []byte("bk;"))
	if !ok {
		return 0
	}
	for len(rest) > 0 {
		kv := rest
		if k := bytes.IndexByte(rest, ';'); k >= 0 {
			kv, rest = rest[:k], rest[k+1:]
		} else {
			rest = nil
		}
		if v, ok := bytes.CutPrefix(kv, []byte("t=")); ok {
			if len(v) == 0 || len(v) > 18 {
				return 0
			}
			var n int64
			for _, c := range v {
				if c < '0' || c > '9' {
					return 0
				}
				n = n*10 + int64(c-'0')
			}
			return n
		}
	}
	return 0
}

// compareWithReference parses in with the current parser and the reference
// one, using buffers of the given size, and fails at the first difference.
func compareWithReference(t *testing.T, in []byte, opts Options, size int, wrap func(io.Reader) io.Reader) {
	t.Helper()
	p := newSize(wrap(bytes.NewReader(in)), opts, size)
	ref := refNew(wrap(bytes.NewReader(in)), opts, size)
	for {
		more, refMore := p.Next(), ref.Next()
		if more != refMore {
			t.Fatalf("after line %d: Next() = %v, reference %v", p.Line().Number, more, refMore)
		}
		if !more {
			break
		}
		got, want := p.Line(), ref.Line()
		if got.Number != want.Number || !bytes.Equal(got.Text, want.Text) || !bytes.Equal(got.Raw, want.Raw) ||
			(got.Raw == nil) != (want.Raw == nil) || got.Timestamp != want.Timestamp || got.Truncated != want.Truncated ||
			got.Kind != want.Kind || got.Section != want.Section || got.ExitStatus != want.ExitStatus {
			t.Fatalf("line %d:\n got %+v\nwant %+v\n text %q / %q", want.Number, *got, *want, got.Text, want.Text)
		}
	}
	if (p.Err() == nil) != (ref.Err() == nil) {
		t.Fatalf("Err() = %v, reference %v", p.Err(), ref.Err())
	}
}
