// Package analysis explains a failed Buildkite build: for each failed, not
// soft-failed job it streams the log (a Range tail first for very large
// logs, the whole log when the tail is not enough), runs the classifier with
// a redactor built from the job environment's secret values and the known
// token formats, and adds the evidence the token allows: JUnit XML
// artifacts, Test Engine failed executions and flaky labels, retries that
// passed, and a safe allow-list of the job environment. Identical
// fingerprints across parallel or matrix jobs become one finding with the
// job count and ids.
//
// AnalyzeBuild does the work against any Source (a *bk.Client satisfies
// it) and stores nothing, so the CLI uses it too. Worker runs it for an
// analyze_build task: it checks the build is still worth analysing, marks
// findings also failing on the pipeline's default branch, and stores the
// analysis and its findings in one transaction, replacing any earlier
// analysis of the same attempt.
//
// Missing token scopes degrade gracefully and are recorded as skipped
// evidence ("read_build_logs missing: logs not analysed"). The worker is
// budget-aware: when the client's rate-limit snapshot runs low, or Buildkite
// answers 429, it returns a *RetryLaterError saying when to try again.
//
// Secrets never reach the store: every string of a finding, and every
// allow-listed environment value, passes through the redactor of the
// build's secret values before it leaves this package.
package analysis
