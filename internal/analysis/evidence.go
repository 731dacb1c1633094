package analysis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/joshdk/go-junit"

	"github.com/kitewatch/kitewatch/internal/bk"
	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/classify"
	"github.com/kitewatch/kitewatch/internal/redact"
)

// envAllowList is the part of a job environment an analysis keeps: context
// a developer needs, nothing that could be a secret.
var envAllowList = []string{
	"BUILDKITE_BRANCH", "BUILDKITE_COMMIT", "BUILDKITE_TAG", "BUILDKITE_PULL_REQUEST",
	"BUILDKITE_PULL_REQUEST_BASE_BRANCH", "BUILDKITE_AGENT_NAME", "BUILDKITE_AGENT_META_DATA_QUEUE",
	"BUILDKITE_BUILD_NUMBER", "BUILDKITE_PIPELINE_SLUG", "BUILDKITE_ORGANIZATION_SLUG", "BUILDKITE_JOB_ID",
	"BUILDKITE_STEP_KEY", "BUILDKITE_LABEL", "BUILDKITE_RETRY_COUNT", "BUILDKITE_PARALLEL_JOB",
	"BUILDKITE_PARALLEL_JOB_COUNT",
}

// SafeEnv reduces a job environment to the allow-list (branch, commit,
// pull request, agent...). Values are redacted again by the caller with
// the build's secret values.
func SafeEnv(env map[string]string) map[string]string {
	out := map[string]string{}
	for _, k := range envAllowList {
		if v, ok := env[k]; ok && v != "" && !redact.IsSecretName(k) {
			if len(v) > 200 {
				v = v[:200]
			}
			out[k] = redact.New().String(v)
		}
	}
	return out
}

// maxExcerptLines bounds excerpts built from JUnit and Test Engine text.
const maxExcerptLines = 20

// junit reads the job's XML artifacts as JUnit reports and merges their
// failing tests. It returns how many new findings it added.
func (r *run) junit(ctx context.Context, jobID string, red *redact.Redactor, retriedPassed bool) (int, error) {
	if err := r.budget(); err != nil {
		return 0, err
	}
	arts, err := r.src.JobArtifacts(ctx, r.org, r.pipeline, r.number, jobID)
	switch {
	case err == nil:
	case bk.IsRateLimited(err):
		return 0, r.wrap(err, "list artifacts")
	case r.forbidden(err, ci.EvidenceArtifacts, "JUnit artifacts not read", jobID):
		r.noArts = true
		return 0, nil
	default:
		r.skip(ci.SkippedEvidence{Evidence: ci.EvidenceArtifacts, JobID: jobID, Reason: "artifacts unavailable: " + shortErr(err)})
		return 0, nil
	}
	added, read := 0, 0
	for _, a := range arts {
		if !strings.HasSuffix(strings.ToLower(a.Path), ".xml") || (a.State != "" && a.State != "finished") {
			continue
		}
		if read >= r.opts.MaxJUnitArtifacts {
			r.skip(ci.SkippedEvidence{Evidence: ci.EvidenceArtifacts, JobID: jobID,
				Reason: fmt.Sprintf("more than %d XML artifacts: the rest not read", r.opts.MaxJUnitArtifacts)})
			break
		}
		read++
		if err := r.budget(); err != nil {
			return 0, err
		}
		data, err := r.src.DownloadArtifact(ctx, r.org, r.pipeline, r.number, a, r.opts.MaxArtifactBytes)
		if err != nil {
			if bk.IsRateLimited(err) {
				return 0, r.wrap(err, "download artifact")
			}
			r.skip(ci.SkippedEvidence{Evidence: ci.EvidenceArtifacts, JobID: jobID,
				Reason: "artifact " + red.String(a.Path) + " not read: " + shortErr(err)})
			continue
		}
		suites, err := junit.Ingest(data)
		if err != nil {
			continue // not a JUnit report
		}
		for _, t := range failingTests(suites) {
			if r.merger.addTest(jobID, ci.FindingFromJUnit, t, red, retriedPassed) {
				added++
			}
		}
	}
	return added, nil
}

// testResult is a failing test from a JUnit report or Test Engine.
type testResult struct {
	name     string
	message  string
	location string
	details  []string
}

func failingTests(suites []junit.Suite) []testResult {
	var out []testResult
	var walk func(s junit.Suite)
	walk = func(s junit.Suite) {
		for _, t := range s.Tests {
			if t.Status != junit.StatusFailed && t.Status != junit.StatusError {
				continue
			}
			name := t.Name
			if t.Classname != "" && !strings.Contains(t.Name, t.Classname) {
				name = t.Classname + " " + t.Name
			}
			tr := testResult{name: name, message: t.Message}
			var body string
			if e, ok := t.Error.(junit.Error); ok {
				body = e.Body
				if tr.message == "" {
					tr.message = e.Message
				}
			}
			for _, k := range []string{"file", "location"} {
				if v := t.Properties[k]; v != "" {
					tr.location = v
					if l := t.Properties["line"]; l != "" && k == "file" {
						tr.location += ":" + l
					}
					break
				}
			}
			if tr.location == "" {
				if m := locationRE.FindStringSubmatch(body); m != nil {
					tr.location = m[1]
				}
			}
			tr.details = splitLines(body, maxExcerptLines)
			out = append(out, tr)
		}
		for _, c := range s.Suites {
			walk(c)
		}
	}
	for _, s := range suites {
		walk(s)
	}
	return out
}

// locationRE finds "path/file.ext:line" in a failure body or backtrace,
// skipping library paths.
var locationRE = regexp.MustCompile(`(?:^|[\s(])((?:\./)?[\w.-]+(?:/[\w.-]+)*\.[A-Za-z]{1,5}:\d+)`)

func splitLines(s string, max int) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		l = strings.TrimRight(l, "\r ")
		if len(out) >= max {
			break
		}
		if len(l) > 500 {
			l = l[:500]
		}
		out = append(out, l)
	}
	if len(out) == 1 && out[0] == "" {
		return nil
	}
	return out
}

// testEngine merges the failed executions of the build's Test Engine runs
// and the suites' flaky labels.
func (r *run) testEngine(ctx context.Context) error {
	if err := r.budget(); err != nil {
		return err
	}
	runs, err := r.src.BuildTestEngineRuns(ctx, r.org, r.pipeline, r.number)
	switch {
	case err == nil:
	case bk.IsRateLimited(err):
		return r.wrap(err, "get Test Engine runs")
	default:
		r.skip(ci.SkippedEvidence{Evidence: ci.EvidenceTestEngine, Reason: "Test Engine runs unavailable: " + shortErr(err)})
		return nil
	}
	red := redact.New(r.secrets...)
	suites := map[string]bool{}
	for i, run := range runs {
		if i >= 5 {
			r.skip(ci.SkippedEvidence{Evidence: ci.EvidenceTestEngine, Reason: "more than 5 Test Engine runs: the rest not read"})
			break
		}
		if err := r.budget(); err != nil {
			return err
		}
		fails, err := r.src.FailedExecutions(ctx, r.org, run.Suite.Slug, run.ID)
		switch {
		case err == nil:
		case bk.IsRateLimited(err):
			return r.wrap(err, "list failed executions")
		case r.forbidden(err, ci.EvidenceTestEngine, "Test Engine not consulted", ""):
			return nil
		default:
			r.skip(ci.SkippedEvidence{Evidence: ci.EvidenceTestEngine, Reason: "failed executions unavailable: " + shortErr(err)})
			continue
		}
		suites[run.Suite.Slug] = true
		for _, fe := range fails {
			tr := testResult{name: fe.TestName, message: fe.FailureReason, location: strings.TrimPrefix(fe.Location, "./")}
			for _, x := range fe.FailureExpanded {
				tr.details = append(tr.details, x.Expanded...)
				tr.details = append(tr.details, x.Backtrace...)
			}
			if len(tr.details) > maxExcerptLines {
				tr.details = tr.details[:maxExcerptLines]
			}
			r.merger.addTest("", ci.FindingFromTestEngine, tr, red, false)
		}
	}
	slugs := make([]string, 0, len(suites))
	for s := range suites {
		slugs = append(slugs, s)
	}
	sort.Strings(slugs)
	for _, s := range slugs {
		if err := r.budget(); err != nil {
			return err
		}
		flaky, err := r.src.FlakyTests(ctx, r.org, s)
		switch {
		case err == nil:
		case bk.IsRateLimited(err):
			return r.wrap(err, "list flaky tests")
		case r.forbidden(err, ci.EvidenceTestEngine, "Test Engine not consulted", ""):
			return nil
		default:
			r.skip(ci.SkippedEvidence{Evidence: ci.EvidenceTestEngine, Reason: "flaky tests unavailable: " + shortErr(err)})
			continue
		}
		for _, t := range flaky {
			r.merger.markFlaky(t)
		}
	}
	return nil
}

// merger dedupes findings across jobs by fingerprint and folds test
// evidence into them.
type merger struct {
	list []*ci.Finding
	byFP map[string]*ci.Finding
}

func newMerger() *merger { return &merger{byFP: map[string]*ci.Finding{}} }

func (m *merger) add(jobID string, f ci.Finding) *ci.Finding {
	if g := m.byFP[f.Fingerprint]; g != nil {
		if jobID != "" && !contains(g.JobIDs, jobID) {
			g.JobIDs = append(g.JobIDs, jobID)
		}
		for _, l := range f.Locations {
			if !containsLoc(g.Locations, l) {
				g.Locations = append(g.Locations, l)
			}
		}
		for _, t := range f.Tests {
			if findTest(g.Tests, t.Name) < 0 {
				g.Tests = append(g.Tests, t)
			}
		}
		g.Flaky = g.Flaky || f.Flaky
		return g
	}
	if jobID != "" {
		f.JobIDs = []string{jobID}
	}
	p := &f
	m.byFP[f.Fingerprint] = p
	m.list = append(m.list, p)
	return p
}

// addLog adds a classifier failure of a job.
func (m *merger) addLog(jobID string, f classify.Failure, retriedPassed bool) {
	cf := ci.Finding{Category: string(f.Category), Title: f.Title, Section: f.Section, Excerpt: f.Excerpt,
		Fingerprint: f.Fingerprint, Confidence: f.Confidence, FirstLine: f.FirstLine, LastLine: f.LastLine,
		Flaky: retriedPassed, Source: ci.FindingFromLog}
	for _, l := range f.Locations {
		cf.Locations = append(cf.Locations, ci.FindingLocation{Path: l.Path, Line: l.Line, Column: l.Column})
	}
	for _, t := range f.Tests {
		cf.Tests = append(cf.Tests, ci.FindingTest{Name: t})
	}
	m.add(jobID, cf)
}

// addTest folds a failing test from a report into the finding that already
// names it, or adds a finding for it. It reports whether it added one.
func (m *merger) addTest(jobID, source string, t testResult, red *redact.Redactor, retriedPassed bool) bool {
	t.name, t.message, t.location = red.String(t.name), red.String(t.message), red.String(t.location)
	for _, f := range m.list {
		if jobID != "" && len(f.JobIDs) > 0 && !contains(f.JobIDs, jobID) {
			continue
		}
		if i := matchTest(f.Tests, t.name); i >= 0 {
			ft := &f.Tests[i]
			if ft.Message == "" {
				ft.Message = firstLine(t.message)
			}
			if ft.Location == "" {
				ft.Location = t.location
			}
			if len(f.Locations) == 0 {
				if l, ok := parseLocation(t.location); ok {
					f.Locations = append(f.Locations, l)
				}
			}
			if jobID != "" && !contains(f.JobIDs, jobID) {
				f.JobIDs = append(f.JobIDs, jobID)
			}
			return false
		}
	}
	title := t.name
	if msg := firstLine(t.message); msg != "" {
		title += ": " + msg
	}
	if len(title) > 200 {
		title = title[:197] + "..."
	}
	excerpt := red.Strings(append([]string(nil), t.details...))
	if len(excerpt) == 0 && t.message != "" {
		excerpt = []string{firstLine(t.message)}
	}
	f := ci.Finding{Category: string(classify.Test), Title: title, Excerpt: excerpt, Confidence: 0.8,
		Tests:       []ci.FindingTest{{Name: t.name, Message: firstLine(t.message), Location: t.location}},
		Fingerprint: testFingerprint(t.name), Flaky: retriedPassed, Source: source}
	if l, ok := parseLocation(t.location); ok {
		f.Locations = []ci.FindingLocation{l}
	}
	before := len(m.list)
	m.add(jobID, f)
	return len(m.list) > before
}

func (m *merger) markFlaky(t bk.SuiteTest) {
	for _, f := range m.list {
		for i := range f.Tests {
			if sameTest(f.Tests[i].Name, t.Scope+" "+t.Name) || sameTest(f.Tests[i].Name, t.Name) {
				f.Tests[i].Flaky = true
				f.Flaky = true
			}
		}
	}
}

// findings returns the merged findings with every string redacted.
func (m *merger) findings(red *redact.Redactor) []ci.Finding {
	out := make([]ci.Finding, 0, len(m.list))
	for _, p := range m.list {
		f := *p
		f.Title, f.Section = red.String(f.Title), red.String(f.Section)
		f.Excerpt = red.Strings(append([]string(nil), f.Excerpt...))
		for i := range f.Locations {
			f.Locations[i].Path = red.String(f.Locations[i].Path)
		}
		for i := range f.Tests {
			t := &f.Tests[i]
			t.Name, t.Message, t.Location = red.String(t.Name), red.String(t.Message), red.String(t.Location)
		}
		f.JobCount = len(f.JobIDs)
		out = append(out, f)
	}
	return out
}

// MarkAlsoFailing sets AlsoFailingOnDefaultBranch on the findings whose
// fingerprint is in failing.
func MarkAlsoFailing(fs []ci.Finding, failing map[string]bool) {
	for i := range fs {
		if failing[fs[i].Fingerprint] {
			fs[i].AlsoFailingOnDefaultBranch = true
		}
	}
}

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

// normTest reduces a test name to lower-case words, so that "Checkout ›
// shows an error" and "Checkout shows an error" compare equal.
func normTest(s string) string {
	return strings.TrimSpace(nonWord.ReplaceAllString(strings.ToLower(s), " "))
}

// sameTest reports whether two spellings name the same test: equal once
// normalised, or one ends with the other (a report may add the file or
// class in front).
func sameTest(a, b string) bool {
	na, nb := normTest(a), normTest(b)
	if na == "" || nb == "" {
		return false
	}
	if na == nb {
		return true
	}
	if len(na) < 8 || len(nb) < 8 {
		return false
	}
	return strings.HasSuffix(na, " "+nb) || strings.HasSuffix(nb, " "+na)
}

func matchTest(ts []ci.FindingTest, name string) int {
	for i, t := range ts {
		if sameTest(t.Name, name) {
			return i
		}
	}
	return -1
}

func findTest(ts []ci.FindingTest, name string) int {
	for i, t := range ts {
		if t.Name == name {
			return i
		}
	}
	return -1
}

var digits = regexp.MustCompile(`\d+`)

// testFingerprint is the fingerprint of a failing test found only in a
// report: stable across runs, numbers ignored.
func testFingerprint(name string) string {
	h := sha256.Sum256([]byte("test\x00" + digits.ReplaceAllString(normTest(name), "N")))
	return hex.EncodeToString(h[:])[:16]
}

// parseLocation splits "path:line[:col]".
func parseLocation(s string) (ci.FindingLocation, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "./")
	if s == "" {
		return ci.FindingLocation{}, false
	}
	parts := strings.Split(s, ":")
	l := ci.FindingLocation{Path: parts[0]}
	if len(parts) > 1 {
		l.Line, _ = strconv.Atoi(parts[1])
	}
	if len(parts) > 2 {
		l.Column, _ = strconv.Atoi(parts[2])
	}
	return l, l.Path != ""
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

func contains(ss []string, s string) bool {
	for _, v := range ss {
		if v == s {
			return true
		}
	}
	return false
}

func containsLoc(ls []ci.FindingLocation, l ci.FindingLocation) bool {
	for _, v := range ls {
		if v == l {
			return true
		}
	}
	return false
}
