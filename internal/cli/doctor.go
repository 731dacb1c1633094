package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// diagnosticCheck mirrors the diagnostics API's checks.
type diagnosticCheck struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Remedy  string `json:"remedy"`
}

// newDoctorCmd is "kitewatch doctor": it asks a running server why builds
// might be missing and prints each check with its remedy. It exits non-zero
// when a check fails.
func newDoctorCmd(e *env) *cobra.Command {
	var f apiFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor --org SLUG",
		Short: "Diagnose missing build data: token scopes, pipelines, provider settings, webhooks, poller",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(true)
			if err != nil {
				return err
			}
			var body struct {
				Checks []diagnosticCheck `json:"checks"`
			}
			if err := c.do(cmd.Context(), "GET", c.orgPath("/integrations/buildkite/diagnostics"), nil, &body); err != nil {
				return err
			}
			failed := 0
			for _, ch := range body.Checks {
				if ch.Status == "fail" {
					failed++
				}
			}
			if err := output(e, asJSON, body, func(w io.Writer) { printChecks(w, body.Checks) }); err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("%d check(s) failed", failed)
			}
			return nil
		},
	}
	f.bind(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printChecks(w io.Writer, checks []diagnosticCheck) {
	mark := map[string]string{"pass": "ok  ", "warn": "warn", "fail": "FAIL", "not_checked": "--  "}
	for _, c := range checks {
		fmt.Fprintf(w, "[%s] %-24s %s\n", mark[c.Status], c.ID, c.Message)
		if c.Remedy != "" && c.Status != "pass" {
			fmt.Fprintf(w, "       %-24s → %s\n", "", strings.TrimSpace(c.Remedy))
		}
	}
}
