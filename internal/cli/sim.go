package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// newSimCmd is being written in the simulator work (issue 3).
func newSimCmd(e *env) *cobra.Command {
	return &cobra.Command{Use: "sim", Short: "Run the Buildkite simulator", RunE: func(*cobra.Command, []string) error {
		return errors.New("not built yet")
	}}
}
