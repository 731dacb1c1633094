package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/kitewatch/kitewatch/internal/analysis"
	"github.com/kitewatch/kitewatch/internal/bk"
	"github.com/kitewatch/kitewatch/internal/classify"
	"github.com/kitewatch/kitewatch/internal/secrets"
)

// analyzeBuildURL analyses every failed, not soft-failed job of the build
// at buildURL (https://buildkite.com/<org>/<pipeline>/builds/<n>) through
// the Buildkite API at apiURL and returns the merged findings in the
// classify document shape. The token comes from tokenFile ("-" for
// standard input) or else BUILDKITE_API_TOKEN; it is never an argument.
// Secrets of the jobs' environments are masked, as are those of
// opts.Redactor.
func analyzeBuildURL(ctx context.Context, e *env, buildURL, tokenFile, apiURL string, opts classify.Options) (classify.Result, error) {
	m := buildURLRe.FindStringSubmatch(buildURL)
	if m == nil {
		return classify.Result{}, fmt.Errorf("analyze %q: not a Buildkite build URL", buildURL)
	}
	org, pipeline := m[1], m[2]
	number, err := strconv.Atoi(m[3])
	if err != nil {
		return classify.Result{}, fmt.Errorf("analyze %s: build number: %w", buildURL, err)
	}
	tok := secrets.NewSecret(strings.TrimSpace(os.Getenv("BUILDKITE_API_TOKEN")))
	if tokenFile != "" {
		if tok, err = readTokenFile(tokenFile, e.stdin); err != nil {
			return classify.Result{}, err
		}
	}
	if tok.Reveal() == "" {
		return classify.Result{}, errors.New("no Buildkite API token: pass --token-file FILE (or - for standard input) or set BUILDKITE_API_TOKEN " +
			"(a token with read_builds and read_build_logs; read_job_env, read_artifacts and read_suites add evidence)")
	}
	client, err := bk.NewClient(apiURL, tok)
	if err != nil {
		return classify.Result{}, fmt.Errorf("analyze %s: %w", buildURL, err)
	}
	rep, err := analysis.AnalyzeBuild(ctx, client, org, pipeline, number, analysis.Options{Classify: opts})
	if err != nil {
		return classify.Result{}, fmt.Errorf("analyze %s: %w", buildURL, err)
	}
	res := classify.Result{Failed: rep.Failed || len(rep.Findings) > 0}
	for _, f := range rep.Findings {
		cf := classify.Failure{Category: classify.Category(f.Category), Title: f.Title, Section: f.Section,
			Excerpt: f.Excerpt, Fingerprint: f.Fingerprint, Confidence: f.Confidence, FirstLine: f.FirstLine,
			LastLine: f.LastLine}
		if opts.Redactor != nil {
			cf.Title = opts.Redactor.String(cf.Title)
			for i, l := range cf.Excerpt {
				cf.Excerpt[i] = opts.Redactor.String(l)
			}
		}
		if f.JobCount > 1 {
			cf.Title += fmt.Sprintf(" (in %d jobs)", f.JobCount)
		}
		for _, l := range f.Locations {
			cf.Locations = append(cf.Locations, classify.Location{Path: l.Path, Line: l.Line, Column: l.Column})
		}
		for _, t := range f.Tests {
			cf.Tests = append(cf.Tests, t.Name)
		}
		res.Failures = append(res.Failures, cf)
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(e.stderr, "kitewatch: skipped %s: %s\n", s.Evidence, s.Reason)
	}
	return res, nil
}
