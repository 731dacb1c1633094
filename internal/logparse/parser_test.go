package logparse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

type got struct {
	text    string
	kind    Kind
	section string
	ts      int64
	status  int
	trunc   bool
}

func parseAll(t *testing.T, in string, opts Options) []got {
	t.Helper()
	p := New(strings.NewReader(in), opts)
	var out []got
	for p.Next() {
		ln := p.Line()
		if ln.Number != len(out)+1 {
			t.Fatalf("line number %d, want %d", ln.Number, len(out)+1)
		}
		out = append(out, got{string(ln.Text), ln.Kind, ln.Section, ln.Timestamp, ln.ExitStatus, ln.Truncated})
	}
	if err := p.Err(); err != nil {
		t.Fatalf("Err() = %v", err)
	}
	return out
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []got
	}{
		{"timestamp BEL", "\x1b_bk;t=1706575117741\x07hello\n", []got{{text: "hello", ts: 1706575117741}}},
		{"timestamp ST", "\x1b_bk;t=42\x1b\\hello\n", []got{{text: "hello", ts: 42}}},
		{"timestamp mid-line", "abc\x1b_bk;t=7\x07def\n", []got{{text: "abcdef", ts: 7}}},
		{"other apc keys", "\x1b_bk;dt=5;t=9\x07x\n", []got{{text: "x", ts: 9}}},
		{"ansi colours", "\x1b[31mred\x1b[0m \x1b[1;32mgreen\x1b[m\n", []got{{text: "red green"}}},
		{"carriage return", "10%\r50%\r100%\n", []got{{text: "100%"}}},
		{"trailing cr", "done\r\n", []got{{text: "done"}}},
		{"erase line", "a\x1b[2K\x1b_bk;t=1\x07\x1b[0Gb\n", []got{{text: "b", ts: 1}}},
		{"osc link", "see \x1b]1339;url='http://x'\x07 there\n", []got{{text: "see  there"}}},
		{"malformed csi is data", "a\x1b[12\n", []got{{text: "a[12"}}},
		{"unterminated apc is data", "a\x1b_bk;t=12\n", []got{{text: "a_bk;t=12"}}},
		{"lone esc at end", "a\x1b\n", []got{{text: "a"}}},
		{"no final newline", "x\ny", []got{{text: "x"}, {text: "y"}}},
		{"empty lines", "\n\n", []got{{}, {}}},
		{"group headers", "~~~ Preparing\nx\n--- :go: Build\ny\n+++ Test\n^^^ +++\nz\n", []got{
			{text: "~~~ Preparing", kind: KindGroup, section: "Preparing"},
			{text: "x", section: "Preparing"},
			{text: "--- :go: Build", kind: KindGroup, section: ":go: Build"},
			{text: "y", section: ":go: Build"},
			{text: "+++ Test", kind: KindGroup, section: "Test"},
			{text: "^^^ +++", kind: KindReopen, section: "Test"},
			{text: "z", section: "Test"},
		}},
		{"go test and diff are not headers", "--- FAIL: TestX (0.00s)\n--- a/x.go\n+++ b/x.go\n", []got{
			{text: "--- FAIL: TestX (0.00s)"}, {text: "--- a/x.go"}, {text: "+++ b/x.go"},
		}},
		{"agent lines", "\x1b[90m$\x1b[0m make test\n\x1b[31m🚨 Error: The command exited with status 2\x1b[0m\nuser command error: exit status 2\n🚨 Error: The command was interrupted by a signal: signal: terminated\n", []got{
			{text: "$ make test", kind: KindCommand},
			{text: "🚨 Error: The command exited with status 2", kind: KindAgentFailure, status: 2},
			{text: "user command error: exit status 2", kind: KindExitStatus, status: 2},
			{text: "🚨 Error: The command was interrupted by a signal: signal: terminated", kind: KindAgentFailure, status: -1},
		}},
		{"invalid utf8 kept", "a\xff\xfeb\n", []got{{text: "a\xff\xfeb"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := parseAll(t, tt.in, Options{})
			if len(out) != len(tt.want) {
				t.Fatalf("got %d lines %+v, want %d", len(out), out, len(tt.want))
			}
			for i := range out {
				if out[i] != tt.want[i] {
					t.Errorf("line %d = %+v, want %+v", i+1, out[i], tt.want[i])
				}
			}
		})
	}
}

func TestLongLinesAreTruncated(t *testing.T) {
	long := strings.Repeat("x", 300000)
	in := "a\n" + long + "\nb\n" + strings.Repeat("y", 100) + "\n"
	out := parseAll(t, in, Options{MaxLineLength: 100})
	if len(out) != 4 {
		t.Fatalf("got %d lines, want 4", len(out))
	}
	if !out[1].trunc || len(out[1].text) != 100 {
		t.Errorf("long line: truncated=%v len=%d, want true 100", out[1].trunc, len(out[1].text))
	}
	if out[2].text != "b" || out[2].trunc {
		t.Errorf("line after long line = %+v", out[2])
	}
	if out[3].trunc {
		t.Errorf("a line exactly at the cap is not truncated")
	}
}

func TestKeepRaw(t *testing.T) {
	p := New(strings.NewReader("\x1b_bk;t=1\x07\x1b[31mx\x1b[0m\r\n"), Options{KeepRaw: true})
	if !p.Next() {
		t.Fatal("no line")
	}
	if got, want := string(p.Line().Raw), "\x1b_bk;t=1\x07\x1b[31mx\x1b[0m"; got != want {
		t.Errorf("Raw = %q, want %q", got, want)
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(b []byte) (int, error) {
	if r.n == 0 {
		r.n++
		return copy(b, "one\ntw"), nil
	}
	return 0, errors.New("disk on fire")
}

func TestReadError(t *testing.T) {
	p := New(&failingReader{}, Options{})
	var lines []string
	for p.Next() {
		lines = append(lines, string(p.Line().Text))
	}
	if len(lines) != 2 || lines[0] != "one" || lines[1] != "tw" {
		t.Errorf("lines = %q", lines)
	}
	if p.Err() == nil {
		t.Error("Err() = nil, want the read error")
	}
}

// referenceInput mixes the byte sequences the parser's fast paths and
// reader treat specially.
func referenceInput() []byte {
	var b bytes.Buffer
	lines := []string{
		"\x1b_bk;t=1706575117741\x07plain text   \t",
		"\x1b_bk;t=0\x07zero then \x1b_bk;t=5\x07later",
		"\x1b_bk;t=1\x07\x1b[32m✓\x1b[0m passes",
		"\x1b_bk;t=123456789012345678\x07eighteen\x1b[0m",
		"\x1b_bk;t=1234567890123456789\x07nineteen",
		"\x1b_bk;t=1234567890123456789\x07nineteen\x1b[1m",
		"\x1b_bk;t=99999999999999999999\x07twenty",
		"\x1b_bk;t=9999999999999999999\x07overflow",
		"\x1b_bk;t=\x07empty",
		"\x1b_bk;t=12a\x07letters",
		"\x1b_bk;t=42\x1b\\string terminator",
		"\x1b_bk;t=7",
		"\x1b_bk;t=",
		"\x1b_bk;t=3\x07Progress: 10%\rProgress: 100%",
		"\x1b_bk;t=3\x07a\x1b[2K\x1b[0Gb  ",
		"\x1b_bk;t=4\x07~~~ Running commands",
		"\x1b_bk;t=4\x07--- :go: Build",
		"\x1b_bk;t=4\x07--- FAIL: TestX (0.00s)",
		"\x1b_bk;t=4\x07\x1b[90m$\x1b[0m go test ./...",
		"\x1b_bk;t=4\x07^^^ +++",
		"\x1b_bk;t=4\x07\x1b[31m🚨 Error: The command exited with status 2\x1b[0m",
		"user command error: exit status 1",
		"no timestamp at all",
		"no timestamp\x1b[1m bold",
		"crlf\r",
		"",
		"\r",
		"   ",
		"x" + strings.Repeat("y", 200) + "\r",
		strings.Repeat("z", 99) + "\r" + strings.Repeat("w", 300),
		"\x1b_bk;t=5\x07" + strings.Repeat("long ", 100),
	}
	for i := 0; i < 3; i++ {
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	b.WriteString("\x1b_bk;t=6\x07no final newline\r")
	return b.Bytes()
}

// TestMatchesReference checks that the parser returns exactly the lines the
// previous, simpler parser returned, whatever the buffer size, the line cap
// and the way the reader splits its data.
func TestMatchesReference(t *testing.T) {
	in := referenceInput()
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+EOF": iotest.DataErrReader,
	}
	for name, wrap := range readers {
		for _, max := range []int{0, 1, 16, 100, 101, 4096} {
			for _, size := range []int{16, 64, 150, 1 << 10, readBufferSize} {
				t.Run(fmt.Sprintf("%s/max=%d/size=%d", name, max, size), func(t *testing.T) {
					compareWithReference(t, in, Options{MaxLineLength: max, KeepRaw: true}, size, wrap)
					compareWithReference(t, in, Options{MaxLineLength: max}, size, wrap)
				})
			}
		}
	}
}

func TestLeadingTimestamp(t *testing.T) {
	tests := []struct {
		in     string
		ts     int64
		digits int
		after  string
	}{
		{"\x1b_bk;t=1706575117741\x07x", 1706575117741, 13, "x"},
		{"\x1b_bk;t=12345678\x07", 12345678, 8, ""},
		{"\x1b_bk;t=1234567\x07y", 1234567, 7, "y"},
		{"\x1b_bk;t=0\x07", 0, 1, ""},
		{"\x1b_bk;t=1234567890123456789\x07z", 1234567890123456789, 19, "z"},
		{"\x1b_bk;t=12345678901234567890\x07", 0, 0, ""},
		{"\x1b_bk;t=1234567a\x07", 0, 0, ""},
		{"\x1b_bk;t=123456789", 0, 0, ""},
		{"\x1b_bk;t=\x07", 0, 0, ""},
		{"\x1b_bk;t=12:45678\x07", 0, 0, ""},
		{"\x1b_bk;t=1/345678\x07", 0, 0, ""},
		{"plain", 0, 0, ""},
	}
	for _, tt := range tests {
		after, ts, digits := leadingTimestamp([]byte(tt.in))
		if ts != tt.ts || digits != tt.digits || string(after) != tt.after {
			t.Errorf("leadingTimestamp(%q) = %q, %d, %d; want %q, %d, %d", tt.in, after, ts, digits, tt.after, tt.ts, tt.digits)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"\x1b_bk;t=1706575117741\x07hello\n",
		"\x1b_bk;t=1\x1b\\x\r\ny\n",
		"~~~ Running commands\n\x1b[90m$\x1b[0m go test ./...\n",
		"--- FAIL: TestX\n^^^ +++\n\x1b[31m🚨 Error: The command exited with status 1\x1b[0m\n",
		"a\x1b[2K\x1b[0Gb\rc\x1b]1339;url='x'\x07\n",
		"\x1b_bk;t=99999999999999999999\x07\x1b[\x1b_\x1b",
		"\xff\xfe\x00\x07\x08\n\n",
	} {
		f.Add([]byte(s), 16)
	}
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max < 0 {
			max = -max
		}
		max = max%4096 + 1
		p := New(bytes.NewReader(in), Options{MaxLineLength: max, KeepRaw: true})
		n := 0
		for p.Next() {
			ln := p.Line()
			n++
			if ln.Number != n {
				t.Fatalf("line number %d, want %d", ln.Number, n)
			}
			if len(ln.Raw) > max || len(ln.Text) > len(ln.Raw) {
				t.Fatalf("raw %d text %d with cap %d", len(ln.Raw), len(ln.Text), max)
			}
			if bytes.IndexByte(ln.Text, 0x1b) >= 0 || bytes.IndexByte(ln.Text, '\n') >= 0 {
				t.Fatalf("text has an escape or newline: %q", ln.Text)
			}
			if utf8.Valid(in) && !utf8.Valid(ln.Text) && !ln.Truncated {
				t.Fatalf("valid input produced invalid text %q", ln.Text)
			}
		}
		if p.Err() != nil && p.Err() != io.EOF {
			t.Fatalf("Err() = %v", p.Err())
		}
		if want := bytes.Count(in, []byte("\n")); n < want || n > want+1 {
			t.Fatalf("%d lines for %d newlines", n, want)
		}
		// Small buffers exercise lines longer than the buffer.
		compareWithReference(t, in, Options{MaxLineLength: max, KeepRaw: true}, 16+max%64, func(r io.Reader) io.Reader { return r })
		compareWithReference(t, in, Options{MaxLineLength: max}, readBufferSize, iotest.HalfReader)
	})
}

func BenchmarkParse(b *testing.B) {
	var buf bytes.Buffer
	for i := 0; buf.Len() < 8<<20; i++ {
		buf.WriteString("\x1b_bk;t=1706575117741\x07\x1b[90m2024-01-30T00:38:37Z\x1b[0m ok  \tgithub.com/acme/svc/internal/store\t0.412s\tcoverage: 81.2% of statements\n")
		buf.WriteString("\x1b_bk;t=1706575117742\x07Downloading 42%\rDownloading 100%\n")
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		p := New(bytes.NewReader(data), Options{})
		for p.Next() {
		}
	}
}

func TestAgentLine(t *testing.T) {
	tests := []struct {
		in     string
		kind   Kind
		status int
	}{
		{"🚨 Error: The command exited with status 3", KindAgentFailure, 3},
		{"Error: The command was interrupted by a signal: signal: terminated", KindAgentFailure, -1},
		{"🚨 Error: The pre-command hook exited with status 2", KindAgentFailure, 2},
		{"user command error: exit status 7", KindExitStatus, 7},
		{"Error: something else", KindText, 0},
		{"u", KindText, 0},
	}
	for _, tt := range tests {
		if k, st := AgentLine([]byte(tt.in)); k != tt.kind || st != tt.status {
			t.Errorf("AgentLine(%q) = %v, %d; want %v, %d", tt.in, k, st, tt.kind, tt.status)
		}
	}
}
