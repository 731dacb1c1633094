package bksim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kitewatch/kitewatch/internal/bk/bksim/loggen"
)

// getLog serves a job log as JSON {url, content, size, header_times}, as raw
// text (.txt or Accept: text/plain), as HEAD with Content-Length, and as a
// suffix-range tail (reference §7.1). Every form streams from the source, so
// memory stays bounded whatever the log size.
func (s *Server) getLog(c *call) error {
	j, err := c.job()
	if err != nil {
		return err
	}
	src := j.log
	if j.started == nil {
		src = logSource{} // a job that has not started has an empty log
	}
	size, err := src.size()
	if err != nil {
		return err
	}
	logURL := c.rd().jobURL(j) + "/log"
	c.unlock()

	h := c.w.Header()
	text := strings.HasSuffix(c.r.URL.Path, ".txt") || strings.Contains(c.r.Header.Get("Accept"), "text/plain")
	if c.r.Method == http.MethodHead {
		h.Set("Accept-Ranges", "bytes")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		c.w.WriteHeader(http.StatusOK)
		return nil
	}
	if rng := c.r.Header.Get("Range"); rng != "" {
		// Only "bytes=-N" with Accept: text/plain is allowed (.txt counts as
		// asking for text; UNCONFIRMED). The 400/416 bodies are UNCONFIRMED.
		n, ok := suffixRange(rng)
		if !text || !ok {
			return errStatus(http.StatusBadRequest, "Only suffix byte ranges (bytes=-N) of text/plain logs are supported")
		}
		if size == 0 {
			h.Set("Content-Range", "bytes */0")
			return errStatus(http.StatusRequestedRangeNotSatisfiable, "Requested range not satisfiable")
		}
		from := max(0, size-n)
		h.Set("Accept-Ranges", "bytes")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Content-Range", "bytes "+strconv.FormatInt(from, 10)+"-"+strconv.FormatInt(size-1, 10)+"/"+strconv.FormatInt(size, 10))
		h.Set("Content-Length", strconv.FormatInt(size-from, 10))
		c.w.WriteHeader(http.StatusPartialContent)
		_ = src.writeTail(c.w, from)
		return nil
	}
	if text {
		h.Set("Accept-Ranges", "bytes")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		c.w.WriteHeader(http.StatusOK)
		_ = src.writeTo(c.w)
		return nil
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	c.w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(c.w, 64<<10)
	urlJSON, _ := json.Marshal(logURL)
	bw.WriteString(`{"url":`)
	bw.Write(urlJSON)
	bw.WriteString(`,"content":"`)
	enc := &jsonStringWriter{w: bw}
	_ = src.writeTo(enc)
	enc.finish()
	bw.WriteString(`","size":` + strconv.FormatInt(size, 10) + `,"header_times":[`)
	for i, t := range enc.headerTimes {
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString(strconv.FormatInt(t, 10))
	}
	bw.WriteString("]}\n")
	return bw.Flush()
}

// suffixRange parses "bytes=-N" with N > 0; anything else is refused.
func suffixRange(v string) (int64, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes=-")
	if !ok || strings.ContainsAny(rest, ",-") {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// maxHeaderTimes bounds the header_times slice for pathological logs.
const maxHeaderTimes = 100_000

// jsonStringWriter writes bytes as the inside of a JSON string, replacing
// invalid UTF-8 with U+FFFD (the JSON form is UTF-8 normalized, the Range
// form is not), and records the timestamps of group header lines as Unix
// nanoseconds for header_times (semantics UNCONFIRMED, reference §7.1).
type jsonStringWriter struct {
	w           *bufio.Writer
	carry       []byte
	line        []byte // start of the current line, up to lineProbe bytes
	lineDone    bool
	headerTimes []int64
}

const lineProbe = 48

func (j *jsonStringWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(j.carry) > 0 {
		p = append(j.carry, p...)
		j.carry = nil
	}
	for i := 0; i < len(p); {
		c := p[i]
		j.observe(c)
		if c < utf8.RuneSelf {
			j.writeASCII(c)
			i++
			continue
		}
		if !utf8.FullRune(p[i:]) {
			j.carry = append([]byte(nil), p[i:]...)
			break
		}
		r, size := utf8.DecodeRune(p[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			j.w.WriteString(`\ufffd`)
		case r == '\u2028' || r == '\u2029':
			j.w.WriteString(`\u202` + string(rune('8'+r-'\u2028')))
		default:
			j.w.Write(p[i : i+size])
		}
		for k := 1; k < size; k++ {
			j.observe(p[i+k])
		}
		i += size
	}
	return n, nil
}

func (j *jsonStringWriter) finish() {
	for range j.carry {
		j.w.WriteString(`\ufffd`)
	}
	j.carry = nil
	j.endLine()
}

const hexDigits = "0123456789abcdef"

func (j *jsonStringWriter) writeASCII(c byte) {
	switch c {
	case '"':
		j.w.WriteString(`\"`)
	case '\\':
		j.w.WriteString(`\\`)
	case '\n':
		j.w.WriteString(`\n`)
	case '\r':
		j.w.WriteString(`\r`)
	case '\t':
		j.w.WriteString(`\t`)
	default:
		if c < 0x20 {
			j.w.WriteString(`\u00`)
			j.w.WriteByte(hexDigits[c>>4])
			j.w.WriteByte(hexDigits[c&0xf])
			return
		}
		j.w.WriteByte(c)
	}
}

func (j *jsonStringWriter) observe(c byte) {
	if c == '\n' {
		j.endLine()
		return
	}
	if !j.lineDone {
		j.line = append(j.line, c)
		if len(j.line) >= lineProbe {
			j.endLine()
			j.lineDone = true
		}
	}
}

func (j *jsonStringWriter) endLine() {
	if !j.lineDone && len(j.headerTimes) < maxHeaderTimes {
		if ms, text, ok := splitTimestamp(j.line); ok && loggen.IsHeader(text) {
			j.headerTimes = append(j.headerTimes, ms*1_000_000)
		}
	}
	j.line = j.line[:0]
	j.lineDone = false
}

// splitTimestamp splits `ESC _ bk;t=<ms> BEL` off the start of a line.
func splitTimestamp(line []byte) (int64, []byte, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("\x1b_bk;t="))
	if !ok {
		return 0, nil, false
	}
	i := bytes.IndexByte(rest, '\a')
	if i <= 0 {
		return 0, nil, false
	}
	ms, err := strconv.ParseInt(string(rest[:i]), 10, 64)
	if err != nil {
		return 0, nil, false
	}
	return ms, rest[i+1:], true
}

var _ io.Writer = (*jsonStringWriter)(nil)
