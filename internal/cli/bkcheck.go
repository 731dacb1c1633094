package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kitewatch/kitewatch/internal/bk"
	"github.com/kitewatch/kitewatch/internal/secrets"
)

// Exit codes of `kitewatch buildkite check`.
const (
	checkExitProblems = 1 // the token has at least one error-level problem
	checkExitUsage    = 2 // the token could not be read
)

// newBuildkiteCheckCmd returns `buildkite check`, which verifies a Buildkite
// API token locally, without a kitewatch server.
func newBuildkiteCheckCmd(e *env) *cobra.Command {
	var (
		tokenFile string
		org       string
		apiURL    string
		asJSON    bool
		timeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "check --token-file FILE [--organization SLUG]",
		Short: "Check a Buildkite API token locally, without a kitewatch server",
		Long: `Check runs the same checks as connecting a token in kitewatch: a valid API
access token, all 9 scopes, not expired, access to the organization, and
Buildkite reachable. It prints the scopes as a checklist and every problem
with what to do about it.

The token is read from --token-file, or from standard input with
--token-file -; never from the command line, where other users and shell
history could see it.

Exit status: 0 when the token is usable (warnings allowed), 1 when it has
problems, 2 when the token could not be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tokenFile == "" {
				return &exitError{code: checkExitUsage, err: errors.New("buildkite check: --token-file is required (use --token-file - to read the token from standard input)")}
			}
			token, err := readTokenFile(tokenFile, e.stdin)
			if err != nil {
				return &exitError{code: checkExitUsage, err: err}
			}
			rep := bk.Verify(cmd.Context(), apiURL, token, bk.VerifyOptions{Organization: org, Timeout: timeout})
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(checkJSON{Report: rep, OK: rep.OK(), RequiredScopes: bk.RequiredScopes}); err != nil {
					return fmt.Errorf("buildkite check: write report: %w", err)
				}
			} else {
				printCheckReport(e.stdout, apiURL, rep)
			}
			if !rep.OK() {
				return &exitError{code: checkExitProblems, err: errors.New("")}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&tokenFile, "token-file", "", "file holding the Buildkite API access token, or - for standard input")
	f.StringVar(&org, "organization", "", "Buildkite organization slug (needed when the token reaches several)")
	f.StringVar(&apiURL, "api-url", bk.DefaultBaseURL, "Buildkite REST API base URL")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.DurationVar(&timeout, "timeout", bk.DefaultVerifyTimeout, "deadline of each API call")
	return cmd
}

// checkJSON is the --json output: the report plus its verdict and the scope
// checklist's reference.
type checkJSON struct {
	bk.Report
	OK             bool       `json:"ok"`
	RequiredScopes []bk.Scope `json:"required_scopes"`
}

// maxTokenFile bounds how much of a token file is read.
const maxTokenFile = bk.MaxTokenLength + 2

// readTokenFile reads a token from path ("-" for stdin), trimming
// surrounding whitespace such as the final newline. Errors never contain the
// file's content.
func readTokenFile(path string, stdin io.Reader) (secrets.Secret, error) {
	var r io.Reader
	name := path
	if path == "-" {
		r, name = stdin, "standard input"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return secrets.Secret{}, fmt.Errorf("read token file: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxTokenFile+1))
	if err != nil {
		return secrets.Secret{}, fmt.Errorf("read token from %s: %w", name, err)
	}
	// An over-long input is passed on (truncated) so that verification
	// reports it as token_format_invalid with its usual advice.
	tok := strings.TrimSpace(string(data))
	clear(data)
	return secrets.NewSecret(tok), nil
}

// printCheckReport writes the human-readable report. Marks are ✓/✗/? with
// words, so the result does not depend on colour.
func printCheckReport(w io.Writer, apiURL string, rep bk.Report) {
	fmt.Fprintf(w, "Buildkite token check against %s\n\n", apiURL)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	tf := rep.Token
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "  %s\t%s\n", k, v)
		}
	}
	row("Token", tf.Masked)
	row("UUID", tf.UUID)
	row("Description", tf.Description)
	owner := tf.OwnerName
	if tf.OwnerEmail != "" {
		owner = strings.TrimSpace(owner + " <" + tf.OwnerEmail + ">")
	}
	row("Owner", owner)
	if tf.CreatedAt != nil {
		row("Created", tf.CreatedAt.Format(time.RFC3339))
	}
	switch {
	case tf.ExpiresAt != nil:
		row("Expires", tf.ExpiresAt.Format(time.RFC3339))
	case tf.Scopes != nil:
		row("Expires", "never")
	}
	if rep.Organization.Slug != "" {
		name := rep.Organization.Slug
		if rep.Organization.Name != "" {
			name += " (" + rep.Organization.Name + ")"
		}
		row("Organization", name)
	}
	if len(rep.Organizations) > 1 {
		var s []string
		for _, o := range rep.Organizations {
			s = append(s, o.Slug)
		}
		row("Reachable orgs", strings.Join(s, ", "))
	}
	tw.Flush()

	fmt.Fprintln(w, "\nScopes kitewatch needs:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range bk.RequiredScopes {
		mark, state := "?", "unknown"
		if tf.Scopes != nil {
			if slices.Contains(tf.Scopes, s.Name) {
				mark, state = "✓", "granted"
			} else {
				mark, state = "✗", "MISSING"
			}
		}
		fmt.Fprintf(tw, "  %s %s\t%s\t%s\n", mark, s.Name, state, s.Purpose)
	}
	tw.Flush()
	if len(tf.ExtraScopes) > 0 {
		fmt.Fprintf(w, "  Also granted (not needed): %s\n", strings.Join(tf.ExtraScopes, ", "))
	}

	if len(rep.Problems) > 0 {
		fmt.Fprintln(w, "\nProblems:")
		for _, p := range rep.Problems {
			fmt.Fprintf(w, "  %s %s: %s\n", strings.ToUpper(p.Severity), p.Code, p.Message)
			fmt.Fprintf(w, "    What to do: %s\n", p.Remedy)
		}
	}
	fmt.Fprintln(w)
	errs, warns := 0, 0
	for _, p := range rep.Problems {
		if p.Severity == bk.SeverityError {
			errs++
		} else {
			warns++
		}
	}
	switch {
	case errs > 0:
		fmt.Fprintf(w, "Result: NOT USABLE (%d error(s), %d warning(s))\n", errs, warns)
	case warns > 0:
		fmt.Fprintf(w, "Result: OK, with %d warning(s)\n", warns)
	default:
		fmt.Fprintln(w, "Result: OK")
	}
}
