package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/kitewatch/kitewatch/internal/bk"
	"github.com/kitewatch/kitewatch/internal/classify"
	"github.com/kitewatch/kitewatch/internal/redact"
)

// buildURLRe matches https://buildkite.com/<org>/<pipeline>/builds/<n>.
var buildURLRe = regexp.MustCompile(`^https://buildkite\.com/([^/]+)/([^/]+)/builds/(\d+)/?(?:#.*)?$`)

// newAnalyzeCmd builds `kitewatch analyze [--json] FILE|-|BUILD_URL`.
//
// Exit codes: 0 when the analysis ran, whatever it found; 1 when it could
// not run (unreadable file, bad arguments, Buildkite API errors).
func newAnalyzeCmd(e *env) *cobra.Command {
	var (
		asJSON       bool
		maxExcerpt   int
		repoPrefixes []string
		color        string
		tokenFile    string
		apiURL       string
	)
	cmd := &cobra.Command{
		Use:   "analyze [--json] FILE|-|https://buildkite.com/<org>/<pipeline>/builds/<n>",
		Short: "Explain a failed Buildkite job log",
		Long: `Analyse a Buildkite job log and explain why the job failed: the category,
a title, the location and an excerpt of each distinct failure, most causal
first. FILE may be "-" for standard input. --json prints one JSON document
(see docs/analysis.md). Secrets in the log are masked in the output.

Exit status is 0 when the analysis ran, whether or not failures were found,
and 1 when it could not run.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := classify.Options{
				Redactor:        redact.New(redact.SecretValues(environMap())...),
				RepoPrefixes:    repoPrefixes,
				MaxExcerptLines: maxExcerpt,
			}
			src := args[0]
			var (
				res classify.Result
				err error
			)
			if m := buildURLRe.FindStringSubmatch(src); m != nil {
				res, err = analyzeBuildURL(cmd.Context(), e, src, tokenFile, apiURL, opts)
			} else if u, perr := url.Parse(src); perr == nil && (u.Scheme == "http" || u.Scheme == "https") {
				return fmt.Errorf("analyze %q: not a Buildkite build URL (want https://buildkite.com/<org>/<pipeline>/builds/<n>)", u.Redacted())
			} else {
				res, err = analyzeFile(src, e.stdin, opts)
			}
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				if err := enc.Encode(res); err != nil {
					return fmt.Errorf("write analysis: %w", err)
				}
				return nil
			}
			useColor := color == "always" || (color == "auto" && isTerminal(e.stdout))
			writeHuman(e.stdout, res, useColor)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the analysis as one JSON document")
	cmd.Flags().IntVar(&maxExcerpt, "max-excerpt", 0, "maximum excerpt lines per failure (default 30)")
	cmd.Flags().StringSliceVar(&repoPrefixes, "repo-prefix", nil, "extra path prefix to strip from locations (repeatable)")
	cmd.Flags().StringVar(&color, "color", "auto", "colour the output: auto, always or never")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "for a build URL: file holding a Buildkite API token, or - for standard input (default: BUILDKITE_API_TOKEN)")
	cmd.Flags().StringVar(&apiURL, "api-url", envOr("BUILDKITE_API_URL", bk.DefaultBaseURL), "for a build URL: the Buildkite REST API [BUILDKITE_API_URL]")
	return cmd
}

// analyzeFile analyses a local log file, or stdin when path is "-".
func analyzeFile(path string, stdin io.Reader, opts classify.Options) (classify.Result, error) {
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return classify.Result{}, fmt.Errorf("open job log: %w", err)
		}
		defer f.Close()
		r = f
	}
	res, err := classify.Analyze(r, opts)
	if err != nil {
		return classify.Result{}, fmt.Errorf("analyse %s: %w", path, err)
	}
	return res, nil
}

func environMap() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

const (
	ansiReset = "\x1b[0m"
	ansiBold  = "\x1b[1m"
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiGrey  = "\x1b[90m"
	ansiCyan  = "\x1b[36m"
)

// writeHuman prints a short, scannable report.
func writeHuman(w io.Writer, res classify.Result, useColor bool) {
	c := func(code, s string) string {
		if !useColor {
			return s
		}
		return code + s + ansiReset
	}
	switch {
	case len(res.Failures) == 0 && !res.Failed:
		fmt.Fprintln(w, c(ansiGreen, "No failure found: the log looks like a passing job."))
		return
	case len(res.Failures) == 0:
		fmt.Fprintln(w, c(ansiRed, "The job failed, but no cause was found in the log."))
		return
	}
	for i, f := range res.Failures {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s %s\n", c(ansiBold+ansiRed, fmt.Sprintf("%d. [%s]", i+1, f.Category)), c(ansiBold, f.Title))
		var meta []string
		if len(f.Locations) > 0 {
			meta = append(meta, "at "+formatLocation(f.Locations[0]))
		}
		if len(f.Tests) > 0 {
			meta = append(meta, "tests: "+strings.Join(f.Tests, ", "))
		}
		if f.Section != "" {
			meta = append(meta, "in "+f.Section)
		}
		meta = append(meta, fmt.Sprintf("lines %d-%d, confidence %.0f%%", f.FirstLine, f.LastLine, f.Confidence*100))
		for _, m := range meta {
			fmt.Fprintln(w, "   "+c(ansiCyan, m))
		}
		for j, l := range f.Excerpt {
			if j >= 12 {
				fmt.Fprintln(w, c(ansiGrey, fmt.Sprintf("   │ … %d more lines (use --json for all)", len(f.Excerpt)-j)))
				break
			}
			fmt.Fprintln(w, c(ansiGrey, "   │ ")+l)
		}
	}
}

func formatLocation(l classify.Location) string {
	s := l.Path
	if l.Line > 0 {
		s += fmt.Sprintf(":%d", l.Line)
		if l.Column > 0 {
			s += fmt.Sprintf(":%d", l.Column)
		}
	}
	return s
}
