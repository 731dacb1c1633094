// Package redact masks secrets in text before it leaves kitewatch's hands:
// known token formats (Buildkite, GitHub, AWS, Slack, npm, JWTs, private key
// blocks, bearer and Authorization header values), credentials in URLs,
// KEY=value and --password value pairs whose name says they are secret, and
// values given explicitly, such as the values of a job's *_TOKEN variables.
//
// Every secret is replaced with Mask. Redaction is best effort over formats;
// explicit values are always masked.
package redact

import (
	"bytes"
	"io"
	"regexp"
	"sort"
	"strings"
)

// Mask replaces every secret.
const Mask = "[REDACTED]"

// MinValueLength is the shortest explicit value that is masked; shorter values
// (like the Buildkite agent's 6-byte rule) would mask ordinary words.
const MinValueLength = 6

// pattern is one secret format. hints are lower-case literals of which one
// must occur in the lower-cased text for the regexp to be tried. The regexp's
// group "keep" (if any) is kept before the mask, group "tail" after it.
type pattern struct {
	hints []string
	re    *regexp.Regexp
}

const secretWord = `(?:token|secret|password|passwd|pwd|credentials?|api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key|auth[_-]?key|connection[_-]?string|key)`

var patterns = []pattern{
	{[]string{"-----begin"}, regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----(?s:.*?)(-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|$)`)},
	{[]string{"bk"}, regexp.MustCompile(`\bbk[a-z]{2}_[A-Za-z0-9]{16,}`)},
	{[]string{"gh"}, regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{30,}`)},
	{[]string{"github_pat_"}, regexp.MustCompile(`\bgithub_pat_[A-Za-z0-9_]{22,}`)},
	{[]string{"akia", "asia"}, regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`)},
	{[]string{"xox"}, regexp.MustCompile(`\bxox[abposr]-[A-Za-z0-9-]{10,}`)},
	{[]string{"npm_"}, regexp.MustCompile(`\bnpm_[A-Za-z0-9]{36}\b`)},
	{[]string{"glpat-"}, regexp.MustCompile(`\bglpat-[A-Za-z0-9_-]{20,}`)},
	{[]string{"sk_live_", "rk_live_"}, regexp.MustCompile(`\b[rs]k_live_[A-Za-z0-9]{16,}`)},
	{[]string{"eyj"}, regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)},
	{[]string{"authorization"}, regexp.MustCompile(`(?i)(?P<keep>authorization["']?\s*[:=]\s*["']?(?:(?:bearer|basic|token|bot)\s+)?)[^\s"',;]+`)},
	{[]string{"bearer"}, regexp.MustCompile(`(?i)(?P<keep>\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}`)},
	{[]string{"://"}, regexp.MustCompile(`(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s:@'"]*:[^/\s@'"]+@`)},
	{[]string{"://"}, regexp.MustCompile(`(?P<keep>\bhttps?://)(?:x-access-token|oauth2|git|token)?[^/\s:@'"]{20,}@`)},
	// NAME=value, NAME: value, "name": "value" where the name ends in a secret word.
	{[]string{"token", "secret", "pass", "pwd", "credential", "key"}, regexp.MustCompile(`(?i)(?P<keep>\b(?:[a-z0-9]+[_.-])*` + secretWord + `["']?\s*:?=\s*["']?)[^\s"',;]{6,}`)},
	// With a colon the name must be compound (api_key:) or plainly secret
	// (password:), so that prose like "cache key: failed" is left alone.
	{[]string{"token", "secret", "pass", "pwd", "credential", "key"}, regexp.MustCompile(`(?i)(?P<keep>\b(?:(?:[a-z0-9]+[_.-])+` + secretWord + `|password|passwd|secret|token|credentials)["']?\s*:\s*["']?)[^\s"',;]{6,}`)},
	// --password value, --token=value.
	{[]string{"--"}, regexp.MustCompile(`(?i)(?P<keep>--(?:[a-z0-9]+-)*` + secretWord + `(?:=|\s+)["']?)[^\s"'-][^\s"']{5,}`)},
}

// Redactor masks secrets. The zero value masks known formats only; create one
// with New to also mask explicit values. It is safe for concurrent use.
type Redactor struct {
	values   []string
	replacer *strings.Replacer
}

// New returns a Redactor that masks the known formats and the given values.
// Values shorter than MinValueLength are ignored, as are duplicates.
func New(values ...string) *Redactor {
	seen := map[string]bool{}
	var vs []string
	for _, v := range values {
		for _, part := range append([]string{v}, strings.Split(v, "\n")...) {
			part = strings.TrimSpace(part)
			if len(part) < MinValueLength || seen[part] || isBoring(part) {
				continue
			}
			seen[part] = true
			vs = append(vs, part)
		}
	}
	// Longest first, so that a value containing another is masked whole.
	sort.Slice(vs, func(i, j int) bool { return len(vs[i]) > len(vs[j]) })
	r := &Redactor{values: vs}
	if len(vs) > 0 {
		pairs := make([]string, 0, 2*len(vs))
		for _, v := range vs {
			pairs = append(pairs, v, Mask)
		}
		r.replacer = strings.NewReplacer(pairs...)
	}
	return r
}

// String returns s with every secret masked.
func (r *Redactor) String(s string) string {
	if r != nil && r.replacer != nil {
		s = r.replacer.Replace(s)
	}
	lower := strings.ToLower(s)
	for _, p := range patterns {
		if !containsAny(lower, p.hints) {
			continue
		}
		s = replace(p.re, s)
		lower = strings.ToLower(s)
	}
	return s
}

// Strings masks every element of ss in place and returns it.
func (r *Redactor) Strings(ss []string) []string {
	for i, s := range ss {
		ss[i] = r.String(s)
	}
	return ss
}

func replace(re *regexp.Regexp, s string) string {
	keep := re.SubexpIndex("keep")
	if keep < 0 {
		return re.ReplaceAllLiteralString(s, Mask)
	}
	var b strings.Builder
	last := 0
	for _, m := range re.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(s[last:m[0]])
		if m[2*keep] >= 0 {
			b.WriteString(s[m[2*keep]:m[2*keep+1]])
		}
		b.WriteString(Mask)
		last = m[1]
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func isBoring(v string) bool {
	switch strings.ToLower(v) {
	case "true", "false", "enabled", "disabled", "[redacted]", "undefined":
		return true
	}
	return false
}

// secretSuffixes are the variable-name endings whose values are secret.
var secretSuffixes = []string{
	"_TOKEN", "_SECRET", "_PASSWORD", "_PASSWD", "_KEY", "_CREDENTIALS", "_CREDENTIAL",
	"_PRIVATE_KEY", "_ACCESS_KEY", "_SECRET_KEY", "_CONNECTION_STRING", "_API_KEY",
}

// IsSecretName reports whether an environment variable with this name holds a
// secret: TOKEN, SECRET, PASSWORD, KEY, CREDENTIALS or a name ending in
// _TOKEN, _SECRET, _PASSWORD, _KEY, _CREDENTIALS and similar, in any case.
func IsSecretName(name string) bool {
	n := strings.ToUpper(name)
	for _, s := range secretSuffixes {
		if n == s[1:] || strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

// SecretValues returns the values in env that must be masked: those of
// variables whose name IsSecretName, ignoring values shorter than
// MinValueLength and boolean-looking ones. The result is sorted.
func SecretValues(env map[string]string) []string {
	var out []string
	for k, v := range env {
		if !IsSecretName(k) || len(strings.TrimSpace(v)) < MinValueLength || isBoring(strings.TrimSpace(v)) {
			continue
		}
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// NewWriter returns a writer that masks secrets line by line and writes the
// result to w. Lines inside a private key block are masked whole. Close
// flushes a final unterminated line; it does not close w.
func (r *Redactor) NewWriter(w io.Writer) io.WriteCloser {
	return &writer{r: r, w: w}
}

// maxPending bounds the bytes a writer holds while waiting for a newline.
const maxPending = 64 << 10

type writer struct {
	r      *Redactor
	w      io.Writer
	buf    []byte
	inKey  bool
	closed bool
}

func (w *writer) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			if len(w.buf) > maxPending {
				// A huge unterminated line: mask what we have. A secret
				// straddling this cut may escape the known formats, but
				// explicit values are checked again on the joined text.
				if err := w.flush(false); err != nil {
					return 0, err
				}
			}
			break
		}
		w.buf = append(w.buf, p[:i+1]...)
		p = p[i+1:]
		if err := w.flush(true); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func (w *writer) flush(complete bool) error {
	line := string(w.buf)
	w.buf = w.buf[:0]
	nl := ""
	if l, ok := strings.CutSuffix(line, "\n"); ok {
		line, nl = l, "\n"
	}
	var out string
	switch {
	case w.inKey:
		out = Mask
		if strings.Contains(line, "-----END") && strings.Contains(line, "PRIVATE KEY") {
			w.inKey = false
		}
	case strings.Contains(line, "-----BEGIN") && strings.Contains(line, "PRIVATE KEY") && !strings.Contains(line, "-----END"):
		w.inKey = complete
		out = w.r.String(line)
	default:
		out = w.r.String(line)
	}
	_, err := io.WriteString(w.w, out+nl)
	return err
}

func (w *writer) Close() error {
	if w.closed || len(w.buf) == 0 {
		w.closed = true
		return nil
	}
	w.closed = true
	return w.flush(false)
}
