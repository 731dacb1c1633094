package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// newAnalyzeCmd is being written in the analysis work (issue 7).
func newAnalyzeCmd(e *env) *cobra.Command {
	return &cobra.Command{Use: "analyze", Short: "Explain a failed Buildkite job log", RunE: func(*cobra.Command, []string) error {
		return errors.New("not built yet")
	}}
}
