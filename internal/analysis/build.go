package analysis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk"
	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/classify"
	"github.com/kitewatch/kitewatch/internal/redact"
)

// Source is what a build analysis needs from Buildkite; *bk.Client
// satisfies it.
type Source interface {
	GetBuild(ctx context.Context, org, pipeline string, number int) (bk.BuildJSON, error)
	JobLogSize(ctx context.Context, org, pipeline string, build int, jobID string) (int64, error)
	JobLog(ctx context.Context, org, pipeline string, build int, jobID string) (io.ReadCloser, error)
	JobLogTail(ctx context.Context, org, pipeline string, build int, jobID string, n int64) ([]byte, error)
	JobEnv(ctx context.Context, org, pipeline string, build int, jobID string) (map[string]string, error)
	JobArtifacts(ctx context.Context, org, pipeline string, build int, jobID string) ([]bk.Artifact, error)
	DownloadArtifact(ctx context.Context, org, pipeline string, build int, a bk.Artifact, max int64) ([]byte, error)
	BuildTestEngineRuns(ctx context.Context, org, pipeline string, number int) ([]bk.TestEngineRun, error)
	FailedExecutions(ctx context.Context, org, suite, runID string) ([]bk.FailedExecution, error)
	FlakyTests(ctx context.Context, org, suite string) ([]bk.SuiteTest, error)
	RateLimit() bk.RateLimitSnapshot
}

// Options tunes a build analysis. The zero value uses the defaults.
type Options struct {
	// MaxLogBytes caps how much of a job log is downloaded; a larger log is
	// analysed from its last TailBytes only (default 64 MiB).
	MaxLogBytes int64
	// TailThreshold: a log larger than this is analysed from a Range tail
	// first, and downloaded whole only when the tail explains nothing
	// beyond the exit status (default 4 MiB).
	TailThreshold int64
	// TailBytes is the size of that tail (default 1 MiB).
	TailBytes int64
	// MaxArtifactBytes caps each JUnit artifact downloaded (default 8 MiB).
	MaxArtifactBytes int64
	// MaxJobs caps how many failed jobs are analysed (default 50).
	MaxJobs int
	// MaxJUnitArtifacts caps the XML artifacts read per job (default 10).
	MaxJUnitArtifacts int
	// MinBudget is the number of remaining Buildkite requests in the
	// current rate-limit window under which the analysis stops and asks to
	// be retried after the window resets (default 20). The analysis also
	// always leaves half of the window's limit to everything else the
	// token does (polling, verification, people's own tools).
	MinBudget int
	// Classify is passed to the classifier; its Redactor is replaced by the
	// job's.
	Classify classify.Options
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.MaxLogBytes <= 0 {
		o.MaxLogBytes = 64 << 20
	}
	if o.TailThreshold <= 0 {
		o.TailThreshold = 4 << 20
	}
	if o.TailBytes <= 0 {
		o.TailBytes = 1 << 20
	}
	o.TailBytes = min(o.TailBytes, o.MaxLogBytes)
	if o.MaxArtifactBytes <= 0 {
		o.MaxArtifactBytes = bk.DefaultMaxArtifactBytes
	}
	if o.MaxJobs <= 0 {
		o.MaxJobs = 50
	}
	if o.MaxJUnitArtifacts <= 0 {
		o.MaxJUnitArtifacts = 10
	}
	if o.MinBudget <= 0 {
		o.MinBudget = 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// RetryLaterError asks the caller to run the analysis again after Until:
// the Buildkite rate-limit budget is exhausted or nearly so.
type RetryLaterError struct {
	Until  time.Time
	Reason string
}

func (e *RetryLaterError) Error() string {
	return fmt.Sprintf("analysis postponed until %s: %s", e.Until.UTC().Format(time.RFC3339), e.Reason)
}

// Report is the analysis of one build through the API, before storage.
type Report struct {
	Build    bk.BuildJSON
	Jobs     []ci.AnalysedJob
	Skipped  []ci.SkippedEvidence
	Findings []ci.Finding
	// Failed is set when some analysed job log showed a failure.
	Failed bool
}

// run holds one build analysis in progress.
type run struct {
	src      Source
	opts     Options
	org      string
	pipeline string
	number   int
	rep      Report
	skipped  map[string]bool // evidence+scope already recorded
	secrets  []string        // every secret value seen in job envs
	merger   *merger
	noLogs   bool // read_build_logs is missing: stop asking
	noEnv    bool
	noArts   bool
}

// AnalyzeBuild analyses every failed, not soft-failed job of the build
// org/pipeline#number through src and returns the merged findings. It
// stores nothing. It fails with a *RetryLaterError when the rate-limit
// budget is low or exhausted, and with the client's error when the build
// cannot be read or a log download fails for a reason other than a
// missing scope or a missing log (so that the caller retries).
func AnalyzeBuild(ctx context.Context, src Source, org, pipeline string, number int, opts Options) (Report, error) {
	r := &run{src: src, opts: opts.withDefaults(), org: org, pipeline: pipeline, number: number,
		skipped: map[string]bool{}, merger: newMerger()}
	if err := r.budget(); err != nil {
		return Report{}, err
	}
	b, err := src.GetBuild(ctx, org, pipeline, number)
	if err != nil {
		return Report{}, r.wrap(err, "get build")
	}
	r.rep.Build = b
	jobs := selectJobs(b.Jobs)
	if len(jobs) > r.opts.MaxJobs {
		r.skip(ci.SkippedEvidence{Evidence: ci.EvidenceLogs, Reason: fmt.Sprintf("%d failed jobs: only the first %d analysed",
			len(jobs), r.opts.MaxJobs)})
		jobs = jobs[:r.opts.MaxJobs]
	}
	for _, j := range jobs {
		if err := r.job(ctx, j); err != nil {
			return Report{}, err
		}
	}
	if err := r.testEngine(ctx); err != nil {
		return Report{}, err
	}
	red := redact.New(r.secrets...)
	r.rep.Findings = r.merger.findings(red)
	for i := range r.rep.Jobs {
		for k, v := range r.rep.Jobs[i].Env {
			r.rep.Jobs[i].Env[k] = red.String(v)
		}
		r.rep.Jobs[i].Name = red.String(r.rep.Jobs[i].Name)
	}
	return r.rep, nil
}

// selected is a job to analyse and whether a retry of it passed.
type selected struct {
	job           bk.JobJSON
	retriedPassed bool
}

// selectJobs picks failed script jobs that are not soft-failed. A retried
// job is analysed only when its last retry passed (a flaky signal); when
// the retry failed too, the retry is analysed instead.
func selectJobs(jobs []bk.JobJSON) []selected {
	byID := map[string]bk.JobJSON{}
	for _, j := range jobs {
		byID[j.ID] = j
	}
	final := func(j bk.JobJSON) bk.JobJSON {
		for range len(jobs) {
			next, ok := byID[j.RetriedInJobID]
			if j.RetriedInJobID == "" || !ok {
				break
			}
			j = next
		}
		return j
	}
	var out []selected
	for _, j := range jobs {
		if (j.Type != "" && j.Type != "script") || j.SoftFailed || (j.State != "failed" && j.State != "timed_out") {
			continue
		}
		if j.Retried || j.RetriedInJobID != "" {
			if f := final(j); f.ID != j.ID && f.State == "passed" {
				out = append(out, selected{job: j, retriedPassed: true})
			}
			continue
		}
		out = append(out, selected{job: j})
	}
	return out
}

// budget returns a *RetryLaterError when the last seen rate-limit snapshot
// (the tighter of the organization's and the user's windows) has fewer than
// max(MinBudget, half its limit) requests left in a window that has not
// reset.
func (r *run) budget() error {
	s := r.src.RateLimit()
	if s.SeenAt.IsZero() || s.Limit == 0 || s.Remaining >= max(r.opts.MinBudget, s.Limit/2) {
		return nil
	}
	if !s.Reset.After(r.opts.Now()) {
		return nil
	}
	return &RetryLaterError{Until: s.Reset, Reason: fmt.Sprintf("Buildkite rate-limit budget low (%d of %d requests left)",
		s.Remaining, s.Limit)}
}

// wrap turns a 429 into a *RetryLaterError and wraps other errors.
func (r *run) wrap(err error, what string) error {
	var rl *bk.RateLimitError
	if errors.As(err, &rl) {
		return &RetryLaterError{Until: rl.Reset, Reason: "Buildkite rate limit exceeded"}
	}
	return fmt.Errorf("analyse build %s/%s#%d: %s: %w", r.org, r.pipeline, r.number, what, err)
}

func (r *run) skip(s ci.SkippedEvidence) {
	key := s.Evidence + "\x00" + s.Scope + "\x00" + s.JobID + "\x00" + s.Reason
	if s.Scope != "" {
		key = s.Evidence + "\x00" + s.Scope // one note per missing scope
	}
	if r.skipped[key] {
		return
	}
	r.skipped[key] = true
	r.rep.Skipped = append(r.rep.Skipped, s)
}

// forbidden records a 403 as skipped evidence and reports whether err was one.
func (r *run) forbidden(err error, evidence, what, jobID string) bool {
	if !bk.IsForbidden(err) {
		return false
	}
	var ae *bk.APIError
	scope := ""
	if errors.As(err, &ae) {
		scope = ae.MissingScope()
		if scope == "" && ae.Message == "" {
			// A HEAD answer has no body to name the scope: the scope the
			// endpoint needs is the likely cause.
			scope = evidenceScope[evidence]
		}
	}
	reason := what + " not allowed for this token"
	if scope != "" {
		reason = scope + " missing: " + what
		jobID = ""
	}
	r.skip(ci.SkippedEvidence{Evidence: evidence, Scope: scope, Reason: reason, JobID: jobID})
	return true
}

// evidenceScope is the token scope each kind of evidence needs.
var evidenceScope = map[string]string{
	ci.EvidenceLogs: "read_build_logs", ci.EvidenceJobEnv: "read_job_env",
	ci.EvidenceArtifacts: "read_artifacts", ci.EvidenceTestEngine: "read_suites",
}

func (r *run) job(ctx context.Context, sel selected) error {
	j := sel.job
	aj := ci.AnalysedJob{ID: j.ID, Name: j.Name, State: j.State, ExitStatus: j.ExitStatus, WebURL: j.WebURL,
		RetriedPassed: sel.retriedPassed}
	if aj.Name == "" {
		aj.Name = j.Label
	}
	// The job environment gives the redactor its secret values, and the
	// allow-listed context.
	var secretValues []string
	if !r.noEnv {
		if err := r.budget(); err != nil {
			return err
		}
		env, err := r.src.JobEnv(ctx, r.org, r.pipeline, r.number, j.ID)
		switch {
		case err == nil:
			secretValues = redact.SecretValues(env)
			r.secrets = append(r.secrets, secretValues...)
			aj.Env = SafeEnv(env)
		case bk.IsRateLimited(err):
			return r.wrap(err, "get job env")
		case r.forbidden(err, ci.EvidenceJobEnv, "job environments not read; secrets masked by known formats only", j.ID):
			r.noEnv = true
		default:
			r.skip(ci.SkippedEvidence{Evidence: ci.EvidenceJobEnv, JobID: j.ID, Reason: "job environment unavailable: " + shortErr(err)})
		}
	}
	red := redact.New(secretValues...)
	copts := r.opts.Classify
	copts.Redactor = red

	var res classify.Result
	analysed := false
	if !r.noLogs {
		var err error
		res, analysed, err = r.log(ctx, j.ID, &aj, copts)
		if err != nil {
			return err
		}
	}
	if analysed {
		r.rep.Failed = r.rep.Failed || res.Failed
		aj.Findings = len(res.Failures)
		for _, f := range res.Failures {
			r.merger.addLog(j.ID, f, sel.retriedPassed)
		}
	}
	if !r.noArts {
		n, err := r.junit(ctx, j.ID, red, sel.retriedPassed)
		if err != nil {
			return err
		}
		aj.Findings += n
	}
	r.rep.Jobs = append(r.rep.Jobs, aj)
	return nil
}

// log analyses a job's log: a Range tail first when the log is large, the
// whole log when the tail explains nothing beyond the exit status and the
// log is under the cap. It reports false when the log could not be read
// for a reason recorded as skipped evidence.
func (r *run) log(ctx context.Context, jobID string, aj *ci.AnalysedJob, copts classify.Options) (classify.Result, bool, error) {
	if err := r.budget(); err != nil {
		return classify.Result{}, false, err
	}
	size, err := r.src.JobLogSize(ctx, r.org, r.pipeline, r.number, jobID)
	switch {
	case err == nil:
	case bk.IsRateLimited(err):
		return classify.Result{}, false, r.wrap(err, "get job log size")
	case r.forbidden(err, ci.EvidenceLogs, "logs not analysed", jobID):
		r.noLogs = true
		return classify.Result{}, false, nil
	case bk.IsNotFound(err):
		r.skip(ci.SkippedEvidence{Evidence: ci.EvidenceLogs, JobID: jobID, Reason: "the job has no log"})
		return classify.Result{}, false, nil
	default:
		return classify.Result{}, false, r.wrap(err, "get job log size")
	}
	aj.LogBytes = size
	if size == 0 {
		return classify.Result{}, true, nil
	}
	if size > r.opts.TailThreshold || size > r.opts.MaxLogBytes {
		tail, err := r.src.JobLogTail(ctx, r.org, r.pipeline, r.number, jobID, r.opts.TailBytes)
		if err != nil {
			return classify.Result{}, false, r.wrap(err, "get job log tail")
		}
		res, err := classify.Analyze(bytes.NewReader(tail), copts)
		if err != nil {
			return classify.Result{}, false, fmt.Errorf("analyse job log tail %s: %w", jobID, err)
		}
		if explains(res) || size > r.opts.MaxLogBytes {
			aj.Tail, aj.TailBytes = true, int64(len(tail))
			if size > r.opts.MaxLogBytes && !explains(res) {
				r.skip(ci.SkippedEvidence{Evidence: ci.EvidenceLogs, JobID: jobID, Reason: fmt.Sprintf(
					"log of %d bytes is over the %d-byte cap: only its last %d bytes were analysed", size, r.opts.MaxLogBytes, len(tail))})
			}
			return res, true, nil
		}
	}
	if err := r.budget(); err != nil {
		return classify.Result{}, false, err
	}
	rc, err := r.src.JobLog(ctx, r.org, r.pipeline, r.number, jobID)
	if err != nil {
		return classify.Result{}, false, r.wrap(err, "get job log")
	}
	defer rc.Close()
	res, err := classify.Analyze(rc, copts)
	if errors.Is(err, bk.ErrLogTooLarge) {
		// The client's own cap is lower than ours: fall back to the tail.
		tail, terr := r.src.JobLogTail(ctx, r.org, r.pipeline, r.number, jobID, r.opts.TailBytes)
		if terr != nil {
			return classify.Result{}, false, r.wrap(terr, "get job log tail")
		}
		aj.Tail, aj.TailBytes = true, int64(len(tail))
		res, err = classify.Analyze(bytes.NewReader(tail), copts)
	}
	if err != nil {
		return classify.Result{}, false, r.wrap(err, "analyse job log")
	}
	return res, true, nil
}

// explains reports whether a result names a cause beyond the agent's exit
// status line.
func explains(res classify.Result) bool {
	for _, f := range res.Failures {
		if f.Rule != "exit-status" {
			return true
		}
	}
	return false
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s)-i > 8 {
		s = s[i+2:]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
