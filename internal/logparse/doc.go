// Package logparse reads Buildkite job logs as a stream of lines.
//
// A Buildkite job log is terminal output with a few in-band additions: the
// agent prefixes lines with an APC timestamp (ESC _ bk;t=<ms> BEL, or the
// ESC \ string terminator variant), colours text with ANSI SGR sequences,
// redraws progress bars with carriage returns and erase-in-line sequences, and
// structures output with group headers ("--- ", "+++ ", "~~~ " and "^^^ +++").
// The agent also echoes each command as "$ command" and reports a failing
// command with "🚨 Error: The command exited with status N" and
// "user command error: exit status N".
//
// Parser turns that byte stream into Lines: the plain text a human would see
// (ANSI-free, the last carriage-return segment, timestamps removed), the raw
// bytes for rendering, the first timestamp, the kind of line and the group it
// belongs to. It reads with a fixed-size buffer and caps every line, so memory
// is constant whatever the size of the log, and no input is an error: a
// malformed escape sequence or invalid UTF-8 is kept or dropped as data, and a
// line longer than the cap is truncated and flagged.
//
// Use it as a pull iterator:
//
//	p := logparse.New(r, logparse.Options{})
//	for p.Next() {
//		ln := p.Line()
//		fmt.Println(ln.Number, ln.Section, string(ln.Text))
//	}
//	if err := p.Err(); err != nil { ... }
//
// The slices in a Line are reused by the next call to Next; copy what you keep.
package logparse
