package bksim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk/bksim/loggen"
)

// ScenarioVersion is the only scenario file format version this package reads.
const ScenarioVersion = 1

// Scenario is the declarative content of a simulated Buildkite: its
// organizations, users, tokens, pipelines, builds, jobs, logs, artifacts and
// Test Engine data. Times are relative to the moment a Server is created, so a
// scenario stays fresh. Build one with ParseScenario, LoadScenario or Demo.
type Scenario struct {
	Version       int            `json:"version"`
	Description   string         `json:"description,omitempty"`
	Organizations []OrgSpec      `json:"organizations"`
	Users         []UserSpec     `json:"users"`
	TokenSpecs    []TokenSpec    `json:"tokens"`
	Teams         []TeamSpec     `json:"teams,omitempty"`
	Pipelines     []PipelineSpec `json:"pipelines"`
	Builds        []BuildSpec    `json:"builds,omitempty"`
	Suites        []SuiteSpec    `json:"suites,omitempty"`
	Webhooks      []WebhookSpec  `json:"webhooks,omitempty"`

	name string // file name, for errors
	dir  string // directory that relative log and artifact files are read from
}

// OrgSpec declares an organization.
type OrgSpec struct {
	Slug      string  `json:"slug"`
	Name      string  `json:"name"`
	CreatedAt RelTime `json:"created_at,omitzero"`
}

// UserSpec declares a Buildkite user; tokens, builds and teams refer to users
// by email.
type UserSpec struct {
	Name      string  `json:"name"`
	Email     string  `json:"email"`
	CreatedAt RelTime `json:"created_at,omitzero"`
}

// TokenSpec declares an API token. Kind is "user" (a bkua_ REST token, the
// default) or one of agent, cluster, agent-session, job, registry, portal,
// portal-secret, token-exchange, suite: tokens that api.buildkite.com does not
// accept.
type TokenSpec struct {
	Name          string   `json:"name"`
	Purpose       string   `json:"purpose,omitempty"`
	Value         string   `json:"value"`
	Kind          string   `json:"kind,omitempty"`
	User          string   `json:"user,omitempty"`
	Description   string   `json:"description,omitempty"`
	Scopes        []string `json:"scopes,omitempty"`
	Organizations []string `json:"organizations,omitempty"`
	CreatedAt     RelTime  `json:"created_at,omitzero"`
	// ExpiresAt is when the token stops working; zero means never.
	ExpiresAt  RelTime  `json:"expires_at,omitzero"`
	AllowedIPs []string `json:"allowed_ips,omitempty"`
	Revoked    bool     `json:"revoked,omitempty"`
}

// TeamSpec declares a team.
type TeamSpec struct {
	Org         string   `json:"org"`
	Slug        string   `json:"slug"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Privacy     string   `json:"privacy,omitempty"`
	Default     bool     `json:"default,omitempty"`
	Members     []string `json:"members,omitempty"`
}

// PipelineSpec declares a pipeline. Provider settings are passed through as
// given (for GitHub: publish_commit_status, build_pull_requests, ...).
type PipelineSpec struct {
	Org           string            `json:"org"`
	Slug          string            `json:"slug"`
	Name          string            `json:"name"`
	Description   string            `json:"description,omitempty"`
	Repository    string            `json:"repository"`
	DefaultBranch string            `json:"default_branch,omitempty"`
	Provider      ProviderSpec      `json:"provider,omitzero"`
	Visibility    string            `json:"visibility,omitempty"`
	Tags          []string          `json:"tags,omitempty"`
	Env           map[string]string `json:"env,omitempty"`
	Configuration string            `json:"configuration,omitempty"`
	Steps         []map[string]any  `json:"steps,omitempty"`
	CreatedAt     RelTime           `json:"created_at,omitzero"`
}

// ProviderSpec is a pipeline's source provider.
type ProviderSpec struct {
	ID       string         `json:"id"`
	Settings map[string]any `json:"settings,omitempty"`
}

// BuildSpec declares a build. Pipeline is "org/pipeline".
type BuildSpec struct {
	Pipeline    string            `json:"pipeline"`
	Number      int               `json:"number"`
	State       string            `json:"state"`
	Blocked     bool              `json:"blocked,omitempty"`
	Branch      string            `json:"branch"`
	Commit      string            `json:"commit,omitempty"`
	Message     string            `json:"message,omitempty"`
	Tag         string            `json:"tag,omitempty"`
	Source      string            `json:"source,omitempty"`
	Creator     string            `json:"creator,omitempty"`
	Author      *AuthorSpec       `json:"author,omitempty"`
	PullRequest *PullRequestSpec  `json:"pull_request,omitempty"`
	MetaData    map[string]string `json:"meta_data,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	// CreatedAt defaults to one hour ago.
	CreatedAt   RelTime          `json:"created_at,omitzero"`
	Jobs        []JobSpec        `json:"jobs,omitempty"`
	Annotations []AnnotationSpec `json:"annotations,omitempty"`
}

// AuthorSpec is a commit author.
type AuthorSpec struct {
	Username string `json:"username,omitempty"`
	Name     string `json:"name"`
	Email    string `json:"email"`
}

// PullRequestSpec marks a pull-request build.
type PullRequestSpec struct {
	ID         string `json:"id"`
	Base       string `json:"base"`
	Repository string `json:"repository,omitempty"`
}

// JobSpec declares a job of a build. Key names the job inside its build so
// that retries, annotations and Test Engine data can refer to it.
type JobSpec struct {
	Key     string `json:"key"`
	Type    string `json:"type,omitempty"`
	Name    string `json:"name,omitempty"`
	Command string `json:"command,omitempty"`
	State   string `json:"state"`
	// ExitStatus defaults to the log generator's status for script jobs that
	// finished, 0 for passed and 1 for failed.
	ExitStatus   *int              `json:"exit_status,omitempty"`
	SoftFailed   bool              `json:"soft_failed,omitempty"`
	SignalReason string            `json:"signal_reason,omitempty"`
	Log          *LogSpec          `json:"log,omitempty"`
	Env          map[string]string `json:"env,omitempty"`
	Artifacts    []ArtifactSpec    `json:"artifacts,omitempty"`
	// RetryOf is the key of the job this one retries; that job becomes
	// retried and points here.
	RetryOf            string            `json:"retry_of,omitempty"`
	RetryType          string            `json:"retry_type,omitempty"`
	ParallelGroupIndex *int              `json:"parallel_group_index,omitempty"`
	ParallelGroupTotal *int              `json:"parallel_group_total,omitempty"`
	Matrix             map[string]string `json:"matrix,omitempty"`
	AgentQueryRules    []string          `json:"agent_query_rules,omitempty"`
	// StartAfter is how long after the build was created the job started;
	// Duration is how long it ran. Defaults: 20s and 3m.
	StartAfter Duration `json:"start_after,omitzero"`
	Duration   Duration `json:"duration,omitzero"`
}

// LogSpec gives a job's log: inline Text, a File (relative to the scenario
// file), or a Generate spec for the log generator. A script job without a log
// gets a generated one matching its state.
type LogSpec struct {
	Text     string       `json:"text,omitempty"`
	File     string       `json:"file,omitempty"`
	Generate *loggen.Spec `json:"generate,omitempty"`
}

// ArtifactSpec declares an artifact uploaded by a job.
type ArtifactSpec struct {
	Path     string `json:"path"`
	MimeType string `json:"mime_type,omitempty"`
	State    string `json:"state,omitempty"`
	Content  string `json:"content,omitempty"`
	File     string `json:"file,omitempty"`
}

// AnnotationSpec declares a build annotation.
type AnnotationSpec struct {
	Context  string `json:"context"`
	Style    string `json:"style"`
	BodyHTML string `json:"body_html"`
	Job      string `json:"job,omitempty"`
	Priority int    `json:"priority,omitempty"`
}

// SuiteSpec declares a Test Engine suite with its tests and runs.
type SuiteSpec struct {
	Org             string     `json:"org"`
	Slug            string     `json:"slug"`
	Name            string     `json:"name"`
	DefaultBranch   string     `json:"default_branch,omitempty"`
	ApplicationName string     `json:"application_name,omitempty"`
	Tests           []TestSpec `json:"tests,omitempty"`
	Runs            []RunSpec  `json:"runs,omitempty"`
}

// TestSpec declares a test of a suite.
type TestSpec struct {
	Key      string   `json:"key"`
	Scope    string   `json:"scope"`
	Name     string   `json:"name"`
	Location string   `json:"location,omitempty"`
	Labels   []string `json:"labels,omitempty"`
	Passed   int      `json:"passed,omitempty"`
	Failed   int      `json:"failed,omitempty"`
}

// RunSpec declares a Test Engine run, linked to a build by "org/pipeline#number".
type RunSpec struct {
	Build    string        `json:"build"`
	Result   string        `json:"result"`
	Failures []FailureSpec `json:"failures,omitempty"`
}

// FailureSpec is one failed execution in a run.
type FailureSpec struct {
	Test      string   `json:"test"`
	Reason    string   `json:"reason"`
	Backtrace []string `json:"backtrace,omitempty"`
	Duration  float64  `json:"duration,omitempty"`
}

// WebhookSpec declares a webhook endpoint configured from the start.
type WebhookSpec struct {
	URL string `json:"url"`
	// Token is the shared secret; Mode is "token" (default) or "signature".
	Token     string   `json:"token"`
	Mode      string   `json:"mode,omitempty"`
	Events    []string `json:"events,omitempty"`
	Pipelines []string `json:"pipelines,omitempty"`
}

// TokenInfo names a token of a scenario and says what it is for.
type TokenInfo struct {
	Name    string `json:"name"`
	Purpose string `json:"purpose"`
	Value   string `json:"value"`
}

// Tokens lists the scenario's tokens in file order.
func (sc *Scenario) Tokens() []TokenInfo {
	out := make([]TokenInfo, 0, len(sc.TokenSpecs))
	for _, t := range sc.TokenSpecs {
		out = append(out, TokenInfo{Name: t.Name, Purpose: t.Purpose, Value: t.Value})
	}
	return out
}

// Token returns the value of the named token, or "" if there is none.
func (sc *Scenario) Token(name string) string {
	for _, t := range sc.TokenSpecs {
		if t.Name == name {
			return t.Value
		}
	}
	return ""
}

// RelTime is a scenario timestamp: either absolute RFC 3339 or relative to
// "now" when the server starts, written as a signed duration such as "-2h",
// "-90m", "+90d" ("d" means 24h).
type RelTime struct {
	abs    time.Time
	offset time.Duration
	set    bool
	rel    bool
}

// IsZero reports whether the time was not given.
func (t RelTime) IsZero() bool { return !t.set }

// At returns the time relative to now.
func (t RelTime) At(now time.Time) time.Time {
	if t.rel {
		return now.Add(t.offset)
	}
	return t.abs
}

// Ago returns a RelTime d before now.
func Ago(d time.Duration) RelTime { return RelTime{offset: -d, set: true, rel: true} }

// UnmarshalJSON accepts RFC 3339 or a signed duration.
func (t *RelTime) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("time must be a string: %w", err)
	}
	v, err := parseRelTime(s)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// MarshalJSON writes the form UnmarshalJSON reads.
func (t RelTime) MarshalJSON() ([]byte, error) {
	if t.rel {
		return json.Marshal(fmtDuration(t.offset, true))
	}
	return json.Marshal(t.abs.Format(time.RFC3339))
}

func parseRelTime(s string) (RelTime, error) {
	if s == "now" {
		return RelTime{set: true, rel: true}, nil
	}
	if s != "" && (s[0] == '-' || s[0] == '+') {
		d, err := parseDuration(s)
		if err != nil {
			return RelTime{}, err
		}
		return RelTime{offset: d, set: true, rel: true}, nil
	}
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return RelTime{}, fmt.Errorf("time %q is neither RFC 3339 nor a signed duration like \"-2h\"", s)
	}
	return RelTime{abs: at, set: true}, nil
}

var dayRe = regexp.MustCompile(`(\d+)d`)

func parseDuration(s string) (time.Duration, error) {
	// Expand "90d" to hours because time.ParseDuration has no days.
	exp := dayRe.ReplaceAllStringFunc(s, func(m string) string {
		n, _ := strconv.Atoi(strings.TrimSuffix(m, "d"))
		return strconv.Itoa(n*24) + "h"
	})
	d, err := time.ParseDuration(exp)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q (want e.g. \"-2h30m\" or \"+90d\")", s)
	}
	return d, nil
}

func fmtDuration(d time.Duration, signed bool) string {
	s := d.String()
	if signed && d >= 0 {
		s = "+" + s
	}
	return s
}

// Duration is a Go duration string in JSON ("3m", "45s").
type Duration time.Duration

// UnmarshalJSON parses a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string: %w", err)
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// ScenarioError is a problem in a scenario file, located by line and field.
type ScenarioError struct {
	File  string
	Line  int
	Field string
	Err   error
}

func (e *ScenarioError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Err.Error())
	return b.String()
}

func (e *ScenarioError) Unwrap() error { return e.Err }

// LoadScenario reads and parses a scenario file. Relative log and artifact
// file paths in it are resolved against the file's directory.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	sc, err := ParseScenario(path, data)
	if err != nil {
		return nil, err
	}
	sc.dir = filepath.Dir(path)
	if _, err := compile(sc, time.Now(), true); err != nil {
		return nil, locate(sc.name, data, err)
	}
	return sc, nil
}

// ParseScenario parses and validates a scenario document. name is used in
// errors, which give the line and the field at fault. Files named by the
// scenario are not opened here (LoadScenario checks them).
func ParseScenario(name string, data []byte) (*Scenario, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var sc Scenario
	if err := dec.Decode(&sc); err != nil {
		return nil, decodeError(name, data, err)
	}
	if dec.More() {
		return nil, &ScenarioError{File: name, Line: lineAt(data, dec.InputOffset()), Err: errors.New("unexpected data after the scenario object")}
	}
	sc.name = name
	if sc.Version != ScenarioVersion {
		return nil, locate(name, data, fieldErr("version", "unsupported scenario version %d (want %d)", sc.Version, ScenarioVersion))
	}
	if _, err := compile(&sc, time.Now(), false); err != nil {
		return nil, locate(name, data, err)
	}
	return &sc, nil
}

// fieldError is a validation error at a JSON path such as builds[2].jobs[0].state.
type fieldError struct {
	path string
	err  error
}

func (e *fieldError) Error() string { return e.path + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

func fieldErr(path, format string, args ...any) error {
	return &fieldError{path: path, err: fmt.Errorf(format, args...)}
}

func locate(name string, data []byte, err error) error {
	var fe *fieldError
	if !errors.As(err, &fe) {
		return &ScenarioError{File: name, Err: err}
	}
	idx := indexPaths(data)
	off, ok := idx[fe.path]
	// Fall back to the nearest enclosing path that exists in the file.
	for p := fe.path; !ok && p != ""; {
		p = parentPath(p)
		off, ok = idx[p]
	}
	line := 0
	if ok {
		line = lineAt(data, off)
	}
	return &ScenarioError{File: name, Line: line, Field: fe.path, Err: fe.err}
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i <= 0 {
		return ""
	}
	return p[:i]
}

var unknownFieldRe = regexp.MustCompile(`unknown field "([^"]*)"`)

func decodeError(name string, data []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return &ScenarioError{File: name, Line: lineAt(data, se.Offset), Err: fmt.Errorf("invalid JSON: %w", err)}
	case errors.As(err, &te):
		return &ScenarioError{File: name, Line: lineAt(data, te.Offset), Field: te.Field, Err: fmt.Errorf("cannot use a JSON %s as %s", te.Value, te.Type)}
	}
	if m := unknownFieldRe.FindStringSubmatch(err.Error()); m != nil {
		for path, off := range indexPaths(data) {
			if strings.HasSuffix(path, "."+m[1]) || path == m[1] {
				if !knownField(path) {
					return &ScenarioError{File: name, Line: lineAt(data, off), Field: path, Err: fmt.Errorf("unknown field %q", m[1])}
				}
			}
		}
		return &ScenarioError{File: name, Field: m[1], Err: fmt.Errorf("unknown field %q", m[1])}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &ScenarioError{File: name, Line: lineAt(data, int64(len(data))), Err: errors.New("empty or truncated scenario")}
	}
	// Errors from RelTime and Duration parsing carry no offset; name the field
	// by searching for a value the message quotes.
	return &ScenarioError{File: name, Line: guessLine(data, err), Err: err}
}

// knownField reports whether the last key of path is a field of the Go type
// at that position; used to pick the unknown key among same-named ones.
func knownField(path string) bool {
	t := reflect.TypeOf(Scenario{})
	for _, part := range strings.Split(path, ".") {
		if i := strings.IndexByte(part, '['); i >= 0 {
			part = part[:i]
		}
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Map, reflect.Interface:
			return true
		case reflect.Struct:
		default:
			return false
		}
		found := false
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name == part {
				t, found = f.Type, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func guessLine(data []byte, err error) int {
	m := regexp.MustCompile(`"([^"]+)"`).FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	i := bytes.Index(data, []byte(`"`+m[1]+`"`))
	if i < 0 {
		return 0
	}
	return lineAt(data, int64(i))
}

func lineAt(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	return 1 + bytes.Count(data[:off], []byte("\n"))
}

// indexPaths maps each JSON path in data (e.g. "builds[2].jobs[0].state") to
// the offset of its value. Invalid JSON yields a partial index.
func indexPaths(data []byte) map[string]int64 {
	idx := map[string]int64{}
	dec := json.NewDecoder(bytes.NewReader(data))
	var stack []*frame
	valuePath := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if f.isArray {
			return fmt.Sprintf("%s[%d]", f.path, f.n)
		}
		if f.path == "" {
			return f.key
		}
		return f.path + "." + f.key
	}
	for {
		before := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return idx
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && !top.isArray && top.wantKey {
			if k, ok := tok.(string); ok {
				top.key = k
				top.wantKey = false
				continue
			}
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				advance(stack[len(stack)-1])
			}
			continue
		}
		p := valuePath()
		// The offset before Token() may precede a ':' or ','; skip them.
		off := before
		for off < int64(len(data)) && strings.ContainsRune(" \t\r\n:,", rune(data[off])) {
			off++
		}
		if p != "" {
			idx[p] = off
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, &frame{path: p, isArray: d == '[', wantKey: d == '{'})
			continue
		}
		if top != nil {
			advance(top)
		}
	}
}

type frame struct {
	path    string
	isArray bool
	n       int
	key     string
	wantKey bool
}

// advance moves a container frame past one complete value.
func advance(f *frame) {
	if f.isArray {
		f.n++
	} else {
		f.wantKey = true
	}
}
