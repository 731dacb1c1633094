package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kitewatch/kitewatch/internal/bk"
	"github.com/kitewatch/kitewatch/internal/integration"
)

func newBuildkiteCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "buildkite",
		Short: "Connect, check and manage the Buildkite integration",
	}
	cmd.AddCommand(newBuildkiteCheckCmd(e))
	for _, mk := range []func(*env) *cobra.Command{bkConnectCmd, bkStatusCmd, bkVerifyCmd, bkRotateCmd, bkDisconnectCmd, bkBackfillCmd} {
		cmd.AddCommand(mk(e))
	}
	return cmd
}

// printStatus prints an integration status for people.
func printStatus(w io.Writer, st integration.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Status:\t%s\n", statusWords(st.Status))
	if st.Organization != nil {
		fmt.Fprintf(tw, "Buildkite organization:\t%s (%s)\n", st.Organization.Name, st.Organization.Slug)
	}
	if t := st.Token; t != nil {
		fmt.Fprintf(tw, "Token:\t%s\n", t.Masked)
		if t.OwnerName != "" || t.OwnerEmail != "" {
			fmt.Fprintf(tw, "Token owner:\t%s <%s>\n", t.OwnerName, t.OwnerEmail)
		}
		if t.ExpiresAt != nil {
			fmt.Fprintf(tw, "Expires:\t%s (%s)\n", t.ExpiresAt.Format(time.RFC1123), untilWords(*t.ExpiresAt))
		} else {
			fmt.Fprintf(tw, "Expires:\tnever\n")
		}
	}
	if st.LastVerifiedAt != nil {
		fmt.Fprintf(tw, "Last verified:\t%s (%s)\n", st.LastVerifiedAt.Format(time.RFC1123), st.LastResult)
	}
	if st.ConnectedBy != "" && st.ConnectedAt != nil {
		fmt.Fprintf(tw, "Connected by:\t%s on %s\n", st.ConnectedBy, st.ConnectedAt.Format("2006-01-02"))
	}
	tw.Flush()
	if st.Token != nil {
		fmt.Fprintln(w, "\nScopes:")
		missing := map[string]bool{}
		for _, m := range st.Token.MissingScopes {
			missing[m] = true
		}
		for _, s := range bk.RequiredScopes {
			mark := "✓ granted"
			if missing[s.Name] {
				mark = "✗ MISSING"
			}
			fmt.Fprintf(w, "  %-11s %-20s %s\n", mark, s.Name, s.Purpose)
		}
	}
	printProblems(w, st.Problems)
}

func printProblems(w io.Writer, ps []bk.Problem) {
	if len(ps) == 0 {
		return
	}
	fmt.Fprintln(w, "\nProblems:")
	for _, p := range ps {
		fmt.Fprintf(w, "  [%s] %s: %s\n      What to do: %s\n", p.Severity, p.Code, p.Message, p.Remedy)
	}
}

func statusWords(s string) string {
	switch s {
	case "connected":
		return "Connected"
	case "needs_attention":
		return "Needs attention"
	case "disconnected":
		return "Disconnected"
	}
	return "Not connected"
}

func untilWords(t time.Time) string {
	d := time.Until(t)
	if d < 0 {
		return "expired"
	}
	days := int(d.Hours() / 24)
	if days >= 1 {
		return fmt.Sprintf("in %d days", days)
	}
	return fmt.Sprintf("in %d hours", int(d.Hours()))
}

// output prints v as JSON or with the human printer.
func output(e *env, asJSON bool, v any, human func(io.Writer)) error {
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	human(e.stdout)
	return nil
}

// verificationFailure prints the problems of a 422 verification_failed answer.
func verificationFailure(e *env, asJSON bool, err error) error {
	var f *apiFailure
	if !errors.As(err, &f) || f.Code != "verification_failed" {
		return err
	}
	var body struct {
		Problems []bk.Problem `json:"problems"`
	}
	_ = json.Unmarshal(f.Body, &body)
	if asJSON {
		_, _ = e.stdout.Write(f.Body)
	} else {
		fmt.Fprintln(e.stdout, "Buildkite was not connected: the token did not pass verification.")
		printProblems(e.stdout, body.Problems)
	}
	return &exitError{code: 1, err: errors.New("")}
}

// sendToken reads a Buildkite token from tokenFile (never an argument),
// sends it with body to the organization's path, and prints the resulting
// status, or the verification problems.
func sendToken(cmd *cobra.Command, e *env, f *apiFlags, tokenFile, method, path string, body map[string]any, asJSON bool, done string) error {
	c, err := f.client(true)
	if err != nil {
		return err
	}
	if tokenFile == "" {
		return errors.New("--token-file is required (use - to read the token from standard input); tokens are never accepted as arguments")
	}
	tok, err := readTokenFile(tokenFile, e.stdin)
	if err != nil {
		return err
	}
	body["token"] = tok.Reveal()
	var st integration.Status
	if err := c.do(cmd.Context(), method, c.orgPath(path), body, &st); err != nil {
		return verificationFailure(e, asJSON, err)
	}
	return output(e, asJSON, st, func(w io.Writer) { fmt.Fprintln(w, done); printStatus(w, st) })
}

func bkConnectCmd(e *env) *cobra.Command {
	var f apiFlags
	var tokenFile, bkOrg string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "connect --org SLUG --token-file FILE|- [--organization BUILDKITE_SLUG]",
		Short: "Connect Buildkite with an API access token (read from a file or standard input)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return sendToken(cmd, e, &f, tokenFile, "POST", "/integrations/buildkite",
				map[string]any{"organization": bkOrg}, asJSON, "Buildkite connected.")
		},
	}
	f.bind(cmd.Flags())
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the Buildkite API access token, or - for standard input")
	cmd.Flags().StringVar(&bkOrg, "organization", "", "Buildkite organization slug, when the token reaches several")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func bkStatusCmd(e *env) *cobra.Command {
	return statusCmd(e, "status --org SLUG", "Show the Buildkite integration's status",
		"GET", "/integrations/buildkite", false)
}

func bkVerifyCmd(e *env) *cobra.Command {
	return statusCmd(e, "verify --org SLUG", "Re-verify the stored Buildkite token now",
		"POST", "/integrations/buildkite/verify", true)
}

// statusCmd builds a command that sends method to the organization's path
// and prints the integration status it answers. With mustBeConnected, the
// command exits 1 when the status is anything but connected.
func statusCmd(e *env, use, short, method, path string, mustBeConnected bool) *cobra.Command {
	var f apiFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(true)
			if err != nil {
				return err
			}
			var st integration.Status
			if err := c.do(cmd.Context(), method, c.orgPath(path), nil, &st); err != nil {
				return err
			}
			if err := output(e, asJSON, st, func(w io.Writer) { printStatus(w, st) }); err != nil {
				return err
			}
			if mustBeConnected && st.Status != "connected" {
				return &exitError{code: 1, err: errors.New("")}
			}
			return nil
		},
	}
	f.bind(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func bkRotateCmd(e *env) *cobra.Command {
	var f apiFlags
	var tokenFile string
	var revoke, asJSON bool
	cmd := &cobra.Command{
		Use:   "rotate --org SLUG --token-file FILE|- [--revoke-previous]",
		Short: "Replace the stored Buildkite token with a new one (verified first)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return sendToken(cmd, e, &f, tokenFile, "PUT", "/integrations/buildkite/token",
				map[string]any{"revoke_previous": revoke}, asJSON, "Token rotated.")
		},
	}
	f.bind(cmd.Flags())
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the new token, or - for standard input")
	cmd.Flags().BoolVar(&revoke, "revoke-previous", false, "revoke the previous token at Buildkite")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func bkDisconnectCmd(e *env) *cobra.Command {
	var f apiFlags
	var revoke, asJSON bool
	cmd := &cobra.Command{
		Use:   "disconnect --org SLUG [--revoke]",
		Short: "Disconnect Buildkite and erase the stored token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(true)
			if err != nil {
				return err
			}
			path := c.orgPath("/integrations/buildkite")
			if revoke {
				path += "?revoke=true"
			}
			var st integration.Status
			if err := c.do(cmd.Context(), "DELETE", path, nil, &st); err != nil {
				return err
			}
			return output(e, asJSON, st, func(w io.Writer) {
				msg := "Buildkite disconnected; the stored token was erased."
				if revoke {
					msg = "Buildkite disconnected; the token was revoked at Buildkite and erased."
				}
				fmt.Fprintln(w, msg)
			})
		},
	}
	f.bind(cmd.Flags())
	cmd.Flags().BoolVar(&revoke, "revoke", false, "also revoke the token at Buildkite")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
