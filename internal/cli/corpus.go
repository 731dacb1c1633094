package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// newCorpusCmd is being written in the analysis work (issue 7).
func newCorpusCmd(e *env) *cobra.Command {
	return &cobra.Command{Use: "corpus", Short: "Score the log analyser on a corpus", Hidden: true, RunE: func(*cobra.Command, []string) error {
		return errors.New("not built yet")
	}}
}
