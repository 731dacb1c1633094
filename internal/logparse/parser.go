package logparse

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
)

// DefaultMaxLineLength is the line cap used when Options.MaxLineLength is zero.
const DefaultMaxLineLength = 32 << 10

// Kind says what a line is to the Buildkite agent.
type Kind uint8

// The kinds of line the parser recognises.
const (
	// KindText is ordinary command output.
	KindText Kind = iota
	// KindGroup is a group header: "--- title", "+++ title" or "~~~ title".
	KindGroup
	// KindReopen is "^^^ +++", which re-opens (expands) the previous group.
	KindReopen
	// KindCommand is the agent echoing a command: "$ make test".
	KindCommand
	// KindAgentFailure is the agent's "🚨 Error: The command exited with
	// status N", "🚨 Error: The command was interrupted by a signal" or
	// another "🚨 Error: " line (a failing hook or plugin).
	KindAgentFailure
	// KindExitStatus is the agent's "user command error: exit status N".
	KindExitStatus
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindGroup:
		return "group"
	case KindReopen:
		return "reopen"
	case KindCommand:
		return "command"
	case KindAgentFailure:
		return "agent_failure"
	case KindExitStatus:
		return "exit_status"
	default:
		return "text"
	}
}

// Line is one line of a job log. Its slices are only valid until the next
// call to Parser.Next.
type Line struct {
	// Number is the 1-based line number in the log.
	Number int
	// Text is what a terminal would show: no ANSI sequences, no timestamps,
	// the last carriage-return segment, no trailing white space.
	Text []byte
	// Raw is the line's bytes as received, without the line terminator, capped
	// at the maximum line length. It is nil unless Options.KeepRaw is set.
	Raw []byte
	// Timestamp is the first Buildkite timestamp on the line in Unix
	// milliseconds, or 0 when the line has none.
	Timestamp int64
	// Truncated is true when the line was longer than the cap.
	Truncated bool
	// Kind says what the line is to the agent.
	Kind Kind
	// Section is the title of the group the line is in ("" before the first
	// header). A header line's section is its own title.
	Section string
	// ExitStatus is the status of a KindAgentFailure or KindExitStatus line;
	// -1 when the command was interrupted by a signal.
	ExitStatus int
}

// Options configures a Parser. The zero value is ready to use.
type Options struct {
	// MaxLineLength caps the raw bytes kept per line; longer lines are
	// truncated and flagged. Zero means DefaultMaxLineLength.
	MaxLineLength int
	// KeepRaw makes Line.Raw available, for rendering.
	KeepRaw bool
}

// Parser reads a job log line by line. Create one with New.
type Parser struct {
	r       io.Reader
	buf     []byte // lines are found, and used in place, in buf[start:end]
	start   int
	end     int
	rerr    error // the reader's error (io.EOF at the end); no read after it
	max     int
	keepRaw bool
	line    Line
	long    []byte
	text    []byte
	section string
	err     error
	done    bool
}

// readBufferSize is the size of the parser's read buffer (larger when the
// line cap needs it).
const readBufferSize = 256 << 10

// New returns a Parser reading r. It never reads more than one buffer ahead.
func New(r io.Reader, opts Options) *Parser {
	return newSize(r, opts, readBufferSize)
}

// newSize is New with a given buffer size (tests use small ones).
func newSize(r io.Reader, opts Options, size int) *Parser {
	max := opts.MaxLineLength
	if max <= 0 {
		max = DefaultMaxLineLength
	}
	if size < max+1 {
		size = max + 1
	}
	return &Parser{
		r:       r,
		buf:     make([]byte, size),
		max:     max,
		keepRaw: opts.KeepRaw,
		text:    make([]byte, 0, 512),
	}
}

// Next advances to the next line and reports whether there is one. It returns
// false at the end of the input or on a read error (see Err).
func (p *Parser) Next() bool {
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
	if p.keepRaw {
		p.line.Raw = raw
	} else {
		p.line.Raw = nil
	}
	p.line.Text, p.line.Timestamp = p.plain(raw)
	if len(p.line.Text) >= 2 {
		p.classify()
	}
	p.line.Section = p.section
	return true
}

// Line returns the current line. It is only valid after Next returned true,
// and only until the next call to Next.
func (p *Parser) Line() *Line { return &p.line }

// Err returns the first read error other than io.EOF.
func (p *Parser) Err() error { return p.err }

// readLine returns the next line without its terminator, capped at p.max.
// The line is a slice of p.buf (or p.long for a line longer than the
// buffer), valid until the next call.
func (p *Parser) readLine() (raw []byte, truncated, ok bool) {
	scanned := 0 // bytes of buf[start:end] known to hold no newline
	for {
		if i := bytes.IndexByte(p.buf[p.start+scanned:p.end], '\n'); i >= 0 {
			line := p.buf[p.start : p.start+scanned+i]
			p.start += scanned + i + 1
			return p.capLine(line)
		}
		scanned = p.end - p.start
		if p.rerr != nil {
			if scanned == 0 {
				return nil, false, false
			}
			line := p.buf[p.start:p.end]
			p.start = p.end
			return p.capLine(line)
		}
		if scanned == len(p.buf) {
			return p.readLong(), true, true
		}
		p.fill()
	}
}

// capLine removes a trailing carriage return and caps the line at p.max.
func (p *Parser) capLine(line []byte) (raw []byte, truncated, ok bool) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > p.max {
		return line[:p.max], true, true
	}
	return line, false, true
}

// readLong handles a line longer than the buffer (so longer than the cap,
// which is smaller): it keeps the first p.max bytes and discards the rest up
// to the newline.
func (p *Parser) readLong() []byte {
	p.long = append(p.long[:0], p.buf[p.start:p.start+p.max]...)
	p.start = p.end
	for p.rerr == nil {
		p.fill()
		if i := bytes.IndexByte(p.buf[p.start:p.end], '\n'); i >= 0 {
			p.start += i + 1
			break
		}
		p.start = p.end
	}
	if n := len(p.long); n > 0 && p.long[n-1] == '\r' {
		p.long = p.long[:n-1]
	}
	return p.long
}

// fill moves the unread bytes to the front of the buffer and reads more. It
// records the reader's error, io.EOF included, in p.rerr and in p.err.
func (p *Parser) fill() {
	if p.start > 0 {
		p.end = copy(p.buf, p.buf[p.start:p.end])
		p.start = 0
	}
	for tries := 0; ; tries++ {
		n, err := p.r.Read(p.buf[p.end:])
		if n < 0 || n > len(p.buf)-p.end {
			err = errors.New("logparse: reader returned an invalid count")
			n = 0
		}
		p.end += n
		if err != nil {
			p.rerr = err
			if err != io.EOF {
				p.err = err
			}
			return
		}
		if n > 0 {
			return
		}
		if tries >= 100 {
			p.rerr, p.err = io.ErrNoProgress, io.ErrNoProgress
			return
		}
	}
}

var (
	agentExited      = []byte("Error: The command exited with status ")
	agentInterrupted = []byte("Error: The command was interrupted by a signal")
	userCommandError = []byte("user command error: exit status ")
	siren            = []byte("🚨 ")
)

// classify sets the line's kind, exit status and, for headers, the section.
func (p *Parser) classify() {
	t := p.line.Text
	if len(t) < 2 {
		return
	}
	switch t[0] {
	case '-', '+', '~':
		if isHeader(t) {
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
	case 'u', 0xf0, 'E':
		if k, st := AgentLine(t); k != KindText {
			p.line.Kind, p.line.ExitStatus = k, st
		}
	}
}

// AgentLine reports whether t is one of the agent's failure lines ("🚨
// Error: The command exited with status N", "user command error: exit
// status N", a hook's "🚨 Error: …") and its exit status: KindAgentFailure
// or KindExitStatus, or KindText when it is neither. The parser applies it
// to every line; callers that remove a prefix the parser kept (a copied
// log's timestamps) can apply it again.
func AgentLine(t []byte) (Kind, int) {
	if len(t) < 2 {
		return KindText, 0
	}
	switch t[0] {
	case 'u':
		if bytes.HasPrefix(t, userCommandError) {
			return KindExitStatus, atoi(t[len(userCommandError):])
		}
	case 0xf0, 'E':
		s, sirened := bytes.CutPrefix(t, siren)
		switch {
		case bytes.HasPrefix(s, agentExited):
			return KindAgentFailure, atoi(s[len(agentExited):])
		case bytes.HasPrefix(s, agentInterrupted):
			return KindAgentFailure, -1
		case sirened && bytes.HasPrefix(s, []byte("Error: ")):
			// Hooks and plugins fail with their own wording, for example
			// "🚨 Error: The pre-command hook exited with status 1".
			st := 0
			if i := bytes.Index(s, []byte("exited with status ")); i >= 0 {
				st = atoi(s[i+len("exited with status "):])
			}
			return KindAgentFailure, st
		}
	}
	return KindText, 0
}

// isHeader reports whether t is a group header. Go test results ("--- FAIL:")
// and unified diff headers ("--- a/x", "+++ b/x") look like headers but are
// output, so they are excluded.
func isHeader(t []byte) bool {
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
func atoi(b []byte) int {
	n := 0
	for i := 0; i < len(b) && i < 9 && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int(b[i]-'0')
	}
	return n
}

// maxStringEscape bounds the search for the end of an APC or OSC string so
// that an unterminated one costs little.
const maxStringEscape = 1024

// appendPlain appends the visible text of raw to dst and returns it with the
// first Buildkite timestamp found (0 if none). Escape sequences and carriage
// returns are found with IndexByte, so plain runs are copied in bulk; other
// control characters (tabs, a stray BEL or backspace) are kept as data.
func appendPlain(dst, raw []byte) ([]byte, int64) {
	var ts int64
	reset := false
	i := 0
	for i < len(raw) {
		j := nextSpecial(raw[i:])
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
			i, r, t = escape(raw, i)
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

var bkPrefix = []byte("\x1b_bk;t=")

// plain returns the visible text of raw and its first Buildkite timestamp.
// The common lines, "ESC_bk;t=<ms>BEL" then text with no escape or carriage
// return, or such text alone, are used in place; otherwise the plain text
// before the first escape or carriage return is copied in bulk and the rest
// goes through appendPlain.
func (p *Parser) plain(raw []byte) (text []byte, ts int64) {
	if after, t, digits := leadingTimestamp(raw); digits > 0 {
		k := nextSpecial(after)
		if k < 0 {
			return trimTrailingSpace(after), t
		}
		if digits <= 18 {
			// appendPlain would read this timestamp (it takes at most 18
			// digits) and go on with the rest.
			p.text = append(p.text[:0], after[:k]...)
			var later int64
			p.text, later = appendPlain(p.text, after[k:])
			if t == 0 {
				t = later
			}
			return p.text, t
		}
	}
	k := nextSpecial(raw)
	if k < 0 {
		return trimTrailingSpace(raw), 0
	}
	p.text = append(p.text[:0], raw[:k]...)
	return appendPlain(p.text, raw[k:])
}

// leadingTimestamp parses "ESC_bk;t=<ms>BEL" at the start of raw (at most 19
// digits). It returns the bytes after it, the timestamp and the number of
// digits, or 0 digits when raw does not start with one.
func leadingTimestamp(raw []byte) (after []byte, ts int64, digits int) {
	if len(raw) <= len(bkPrefix) || string(raw[:len(bkPrefix)]) != string(bkPrefix) {
		return nil, 0, 0
	}
	d := raw[len(bkPrefix):min(len(raw), len(bkPrefix)+20)]
	i := 0
	if len(d) >= 8 {
		// Millisecond timestamps have 13 digits: take 8 at once.
		if w := binary.LittleEndian.Uint64(d); allDigits(w) {
			ts, i = int64(parse8(w)), 8
		}
	}
	for ; i < len(d) && d[i] >= '0' && d[i] <= '9'; i++ {
		ts = ts*10 + int64(d[i]-'0')
	}
	// The digits must run up to the first BEL.
	if i == 0 || i == len(d) || d[i] != 0x07 {
		return nil, 0, 0
	}
	return raw[len(bkPrefix)+i+1:], ts, i
}

// allDigits reports whether the 8 bytes of w are ASCII digits.
func allDigits(w uint64) bool {
	return ((w+0x4646464646464646)|(w-0x3030303030303030))&0x8080808080808080 == 0
}

// parse8 returns the value of the 8 ASCII digits of w (loaded little-endian,
// so the first digit is the low byte).
func parse8(w uint64) uint64 {
	w &= 0x0F0F0F0F0F0F0F0F
	w = w * (10<<8 + 1) >> 8 & 0x00FF00FF00FF00FF
	w = w * (100<<16 + 1) >> 16 & 0x0000FFFF0000FFFF
	return w * (10000<<32 + 1) >> 32
}

// trimTrailingSpace removes trailing spaces and tabs.
func trimTrailingSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// nextSpecial returns the index of the first ESC or carriage return in b, or
// -1.
func nextSpecial(b []byte) int {
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
func escape(raw []byte, i int) (next int, rewind bool, ts int64) {
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
		end, after := stringEnd(raw, i+2)
		if end < 0 {
			return i + 1, false, 0
		}
		if raw[i+1] == '_' {
			ts = bkTimestamp(raw[i+2 : end])
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
func stringEnd(raw []byte, from int) (end, after int) {
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
func bkTimestamp(apc []byte) int64 {
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
