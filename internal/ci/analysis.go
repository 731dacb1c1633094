package ci

import "time"

// Analysis statuses.
const (
	// AnalysisRunning: the analyze_build task is working on it (or waiting
	// for the Buildkite rate-limit budget to recover).
	AnalysisRunning = "running"
	// AnalysisDone: the findings are stored; Skipped says what evidence
	// could not be used.
	AnalysisDone = "done"
	// AnalysisSkipped: there was nothing to analyse (the build was
	// superseded, or passed after a retry).
	AnalysisSkipped = "skipped"
	// AnalysisFailed: the analysis could not run; Error says why.
	AnalysisFailed = "failed"
)

// Kinds of evidence an analysis uses, for SkippedEvidence.Evidence.
const (
	EvidenceLogs       = "logs"
	EvidenceArtifacts  = "artifacts"
	EvidenceJobEnv     = "job_env"
	EvidenceTestEngine = "test_engine"
)

// Where a finding came from, for Finding.Source.
const (
	FindingFromLog        = "log"
	FindingFromJUnit      = "junit"
	FindingFromTestEngine = "test_engine"
)

// Analysis is the failure analysis of one failed attempt of a build: the
// jobs it looked at, what evidence it had to skip and why, and the distinct
// findings, most causal first.
type Analysis struct {
	ID         int64      `json:"id"`
	OrgID      int64      `json:"-"`
	BuildID    int64      `json:"build_id"`
	Attempt    int        `json:"attempt"`
	Status     string     `json:"status"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	// Error is a safe, user-facing reason when Status is failed (or why a
	// running analysis is waiting).
	Error    string            `json:"error,omitempty"`
	Skipped  []SkippedEvidence `json:"skipped"`
	Jobs     []AnalysedJob     `json:"jobs"`
	Findings []Finding         `json:"findings"`
}

// SkippedEvidence records evidence an analysis could not use, for example
// {Evidence: "logs", Scope: "read_build_logs", Reason: "read_build_logs
// missing: logs not analysed"}.
type SkippedEvidence struct {
	Evidence string `json:"evidence"`
	// Scope is the missing Buildkite token scope, when that is the reason.
	Scope  string `json:"scope,omitempty"`
	Reason string `json:"reason"`
	// JobID is the Buildkite job concerned, "" when it concerns the build.
	JobID string `json:"job_id,omitempty"`
}

// AnalysedJob is a job an analysis looked at. Env is reduced to a safe
// allow-list (branch, commit, pull request, agent...); the job's whole
// environment is never stored.
type AnalysedJob struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	State      string            `json:"state"`
	ExitStatus *int              `json:"exit_status"`
	WebURL     string            `json:"web_url"`
	Env        map[string]string `json:"env,omitempty"`
	// LogBytes is the size of the job's log; Tail is set when only its
	// last TailBytes were analysed.
	LogBytes  int64 `json:"log_bytes"`
	Tail      bool  `json:"tail,omitempty"`
	TailBytes int64 `json:"tail_bytes,omitempty"`
	// RetriedPassed is set on a failed job whose retry passed: its
	// findings are a flaky signal.
	RetriedPassed bool `json:"retried_passed,omitempty"`
	Findings      int  `json:"findings"`
}

// FindingLocation is a place in the repository a finding points at.
type FindingLocation struct {
	Path   string `json:"path"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

// FindingTest is a failing test of a finding, with what the JUnit report or
// Test Engine said about it when available.
type FindingTest struct {
	Name     string `json:"name"`
	Message  string `json:"message,omitempty"`
	Location string `json:"location,omitempty"`
	// Flaky is set when Test Engine labels the test flaky.
	Flaky bool `json:"flaky,omitempty"`
}

// Finding is one distinct failure of a build. Identical fingerprints across
// parallel or matrix jobs are one finding with the job ids and count.
type Finding struct {
	ID          int64             `json:"-"`
	AnalysisID  int64             `json:"-"`
	Category    string            `json:"category"`
	Title       string            `json:"title"`
	Section     string            `json:"section"`
	Excerpt     []string          `json:"excerpt"`
	Locations   []FindingLocation `json:"locations"`
	Tests       []FindingTest     `json:"tests"`
	Fingerprint string            `json:"fingerprint"`
	Confidence  float64           `json:"confidence"`
	FirstLine   int               `json:"first_line"`
	LastLine    int               `json:"last_line"`
	JobIDs      []string          `json:"job_ids"`
	JobCount    int               `json:"job_count"`
	// AlsoFailingOnDefaultBranch is set when the same fingerprint failed
	// recently on the pipeline's default branch: likely not caused by this
	// change.
	AlsoFailingOnDefaultBranch bool `json:"also_failing_on_default_branch"`
	// Flaky is set when a retry of the job passed or Test Engine labels a
	// failing test flaky.
	Flaky bool `json:"flaky"`
	// Source is log, junit or test_engine.
	Source string `json:"source"`
}
