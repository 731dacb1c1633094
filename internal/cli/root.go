// Package cli implements kitewatch's subcommands. It is the only package that
// wires concrete implementations (databases, keepers, the simulator) together.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X .../internal/cli.Version=...".
var Version = "dev"

// env carries the process's standard streams to subcommands so that tests can
// run commands in-process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// exitError carries a specific exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Main runs kitewatch with args and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var xe *exitError
	if errors.As(err, &xe) {
		if xe.err != nil && xe.err.Error() != "" {
			fmt.Fprintln(stderr, "kitewatch:", xe.err)
		}
		return xe.code
	}
	fmt.Fprintln(stderr, "kitewatch:", err)
	return 1
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "kitewatch",
		Short:         "Turn failed Buildkite builds into clear explanations",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, mk := range []func(*env) *cobra.Command{
		newVersionCmd,
		newServeCmd,
		newMigrateCmd,
		newAdminCmd,
		newKeysCmd,
		newBuildkiteCmd,
		newSimCmd,
		newAnalyzeCmd,
		newCorpusCmd,
		newDoctorCmd,
	} {
		root.AddCommand(mk(e))
	}
	return root
}

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the kitewatch version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(e.stdout, "kitewatch", Version)
			return nil
		},
	}
}
