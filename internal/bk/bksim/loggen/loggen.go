// Package loggen writes realistic Buildkite job logs, byte for byte in the
// format the Buildkite agent produces: every line starts with the agent's
// in-band timestamp `ESC _ bk;t=<unix millis> BEL`, the agent prints `~~~`
// group headers and `$ command` prompts, and a failed command ends with the
// `^^^ +++` / `🚨 Error: The command exited with status N` / `^^^ +++` /
// `user command error: exit status N` tail.
//
// Output is deterministic from a Spec (same Spec, same bytes) and can be made
// any size: a Spec with Size set to 1 GiB streams 1 GiB of plausible build
// output without holding more than a line in memory, and Spec.Len reports the
// exact length without generating it. The simulator uses it for scenario logs
// and benchmarks; analysis code can use it as a corpus of known failures.
package loggen

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Spec describes one job log.
type Spec struct {
	// Ecosystem is one of go, js, python, ruby, rust, jvm, docker, infra.
	Ecosystem string `json:"ecosystem"`
	// Failure names the failure kind for the ecosystem (see Kinds); empty
	// means a passing log, which is full of decoy "error" words.
	Failure string `json:"failure,omitempty"`
	// Seed makes the varying parts (names, numbers, timings) reproducible.
	Seed uint64 `json:"seed,omitempty"`
	// Size is the target length in bytes. The log is padded with build output
	// to exactly Size bytes unless the fixed parts alone are longer; 0 means
	// the natural (short) length.
	Size int64 `json:"size,omitempty"`
	// Start is the time stamped on the first line; zero means 2025-01-01 UTC.
	Start time.Time `json:"-"`
	// Command overrides the command echoed in the prompt.
	Command string `json:"command,omitempty"`
	// Repository is the git URL shown in the checkout section.
	Repository string `json:"-"`
	// Commit is the commit checked out.
	Commit string `json:"-"`
}

// Kind is an ecosystem and failure pair the generator knows.
type Kind struct {
	Ecosystem string
	Failure   string
	// Summary says in a few words what the log shows.
	Summary string
}

// Kinds lists every ecosystem and failure the generator can write, passing
// logs (Failure "") included.
func Kinds() []Kind {
	var out []Kind
	for _, eco := range ecosystemOrder {
		e := ecosystems[eco]
		out = append(out, Kind{Ecosystem: eco, Summary: "passing " + eco + " build with decoy error words"})
		for _, f := range e.failureOrder {
			out = append(out, Kind{Ecosystem: eco, Failure: f, Summary: e.failures[f].summary})
		}
	}
	return out
}

// Validate reports whether the Spec names a known ecosystem and failure.
func (s Spec) Validate() error {
	e, ok := ecosystems[s.Ecosystem]
	if !ok {
		return fmt.Errorf("unknown log ecosystem %q (want one of %s)", s.Ecosystem, strings.Join(ecosystemOrder, ", "))
	}
	if s.Failure != "" {
		if _, ok := e.failures[s.Failure]; !ok {
			return fmt.Errorf("unknown %s failure %q (want one of %s)", s.Ecosystem, s.Failure, strings.Join(e.failureOrder, ", "))
		}
	}
	if s.Size < 0 {
		return fmt.Errorf("negative log size %d", s.Size)
	}
	return nil
}

// ExitStatus is the exit status the job would report: 0 for a passing log,
// 137 for an out-of-memory kill, -1 when the agent was lost, 1 otherwise.
func (s Spec) ExitStatus() int {
	if s.Failure == "" {
		return 0
	}
	if e, ok := ecosystems[s.Ecosystem]; ok {
		if f, ok := e.failures[s.Failure]; ok {
			return f.exit
		}
	}
	return 1
}

// prefixLen is the length of `ESC _ bk;t=<13 digits> BEL`, constant for every
// millisecond timestamp between 2001 and 2286.
const prefixLen = 7 + 13 + 1

// minLine is the shortest line: a prefix, no text, a newline.
const minLine = prefixLen + 1

type parts struct {
	head   []string // agent preamble and the command prompt
	tail   []string // failure or success block, then the agent's tail
	filler func(r *rand.Rand, n int) string
}

func (s Spec) build() parts {
	e, ok := ecosystems[s.Ecosystem]
	if !ok {
		e = ecosystems["go"]
	}
	r := rand.New(rand.NewPCG(s.Seed, 0x6b697465))
	cmd := s.Command
	if cmd == "" {
		cmd = e.command
	}
	repo := s.Repository
	if repo == "" {
		repo = "git@github.com:acme/" + e.repo + ".git"
	}
	commit := s.Commit
	if commit == "" {
		commit = fmt.Sprintf("%040x", r.Uint64())[:40]
	}
	host := fmt.Sprintf("ci-agent-%d", 1+r.IntN(12))
	head := []string{
		"~~~ Running global environment hook",
		"\x1b[90m$\x1b[0m /etc/buildkite-agent/hooks/environment",
		"~~~ Preparing working directory",
		"\x1b[90m# Creating \"/var/lib/buildkite-agent/builds/" + host + "/acme/" + e.repo + "\"\x1b[0m",
		"\x1b[90m$\x1b[0m cd /var/lib/buildkite-agent/builds/" + host + "/acme/" + e.repo,
		"\x1b[90m$\x1b[0m git clone -v -- " + repo + " .",
		"Cloning into '.'...",
		"remote: Enumerating objects: 48213, done.",
		"Receiving objects: 100% (48213/48213), 31.07 MiB | 42.10 MiB/s, done.",
		"\x1b[90m$\x1b[0m git checkout -f " + commit,
		"HEAD is now at " + commit[:7] + " Merge pull request #" + strconv.Itoa(100+r.IntN(900)),
		"~~~ Running commands",
		"\x1b[90m$\x1b[0m " + cmd,
	}
	var body []string
	exit := 0
	if s.Failure != "" {
		f := e.failures[s.Failure]
		body = f.lines(r)
		exit = f.exit
	} else {
		body = e.pass(r)
	}
	tail := body
	switch {
	case exit == 0:
	case exit == -1:
		// The agent was lost: the log stops mid-output; Buildkite appends nothing.
	default:
		tail = append(tail,
			"^^^ +++",
			"\x1b[31m🚨 Error: The command exited with status "+strconv.Itoa(exit)+"\x1b[0m",
			"^^^ +++",
			"user command error: exit status "+strconv.Itoa(exit),
		)
	}
	return parts{head: head, tail: tail, filler: e.filler}
}

func linesLen(lines []string) int64 {
	var n int64
	for _, l := range lines {
		n += int64(minLine + len(l))
	}
	return n
}

// Len returns the exact number of bytes WriteTo writes, without generating the
// log.
func (s Spec) Len() int64 {
	p := s.build()
	fixed := linesLen(p.head) + linesLen(p.tail)
	if pad := s.Size - fixed; pad >= minLine {
		return s.Size
	}
	return fixed
}

// Bytes returns the whole log; use it only for small logs.
func (s Spec) Bytes() []byte {
	var b bytes.Buffer
	_, _ = s.WriteTo(&b)
	return b.Bytes()
}

// WriteTo streams the log to w and returns the number of bytes written. It
// holds at most a buffer of output in memory whatever the size.
func (s Spec) WriteTo(w io.Writer) (int64, error) {
	p := s.build()
	start := s.Start
	if start.IsZero() {
		start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	lw := &lineWriter{bw: bufio.NewWriterSize(w, 64<<10), ms: start.UnixMilli()}
	r := rand.New(rand.NewPCG(s.Seed, 0x66696c6c))
	for _, l := range p.head {
		lw.line(l, 40+r.Int64N(900))
	}
	fixed := linesLen(p.head) + linesLen(p.tail)
	if remaining := s.Size - fixed; remaining >= minLine {
		for i := 0; ; i++ {
			text := p.filler(r, i)
			need := int64(minLine + len(text))
			if need+minLine > remaining {
				break
			}
			lw.line(text, r.Int64N(3))
			remaining -= need
		}
		// One last line padded to land exactly on Size.
		text := p.filler(r, -1)
		want := int(remaining) - minLine
		if len(text) > want {
			text = text[:want]
		} else {
			text += strings.Repeat(" ", want-len(text))
		}
		lw.line(text, 1)
	}
	for i, l := range p.tail {
		step := int64(1 + r.IntN(20))
		if i == 0 {
			step = 200 + r.Int64N(2000)
		}
		lw.line(l, step)
	}
	if err := lw.bw.Flush(); err != nil && lw.err == nil {
		lw.err = err
	}
	return lw.n, lw.err
}

type lineWriter struct {
	bw  *bufio.Writer
	ms  int64
	n   int64
	err error
	buf []byte
}

func (lw *lineWriter) line(text string, stepMS int64) {
	if lw.err != nil {
		return
	}
	lw.ms += stepMS
	lw.buf = append(lw.buf[:0], "\x1b_bk;t="...)
	lw.buf = strconv.AppendInt(lw.buf, lw.ms, 10)
	lw.buf = append(lw.buf, '\a')
	lw.buf = append(lw.buf, text...)
	lw.buf = append(lw.buf, '\n')
	n, err := lw.bw.Write(lw.buf)
	lw.n += int64(n)
	lw.err = err
}

// Header times are the timestamps of group header lines; exported so that
// the simulator's JSON log endpoint and tests agree on what a header is.

// IsHeader reports whether text (a line with its timestamp prefix removed)
// opens a Buildkite log group: it starts with "~~~ ", "--- " or "+++ ".
func IsHeader(text []byte) bool {
	return bytes.HasPrefix(text, []byte("~~~ ")) || bytes.HasPrefix(text, []byte("--- ")) || bytes.HasPrefix(text, []byte("+++ "))
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// Ecosystems returns the known ecosystem names in a stable order.
func Ecosystems() []string { return slices.Clone(ecosystemOrder) }
