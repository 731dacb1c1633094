package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kitewatch/kitewatch/internal/classify"
)

// newCorpusCmd builds `kitewatch corpus score DIR`.
func newCorpusCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:    "corpus",
		Short:  "Score the log analyser on a corpus",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	var verbose, strict bool
	score := &cobra.Command{
		Use:   "score DIR",
		Short: "Analyse every NAME.log in DIR and compare with NAME.expected.json",
		Long: `Analyse every NAME.log in DIR that has a NAME.expected.json and print the
detection rate, category accuracy, root cause in the first excerpt, location
recall, failing-test recall and false positives on passing logs.

With --strict the exit status is 1 unless root cause and category are at
least 90% and no passing log reports a failure.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cases, err := classify.LoadCorpus(args[0])
			if err != nil {
				return err
			}
			sc, err := classify.ScoreCorpus(cases, classify.Options{})
			if err != nil {
				return err
			}
			writeScore(e.stdout, sc, verbose)
			if strict && (sc.RootCauseRate() < 90 || sc.CategoryAccuracy() < 90 || sc.FalsePositives > 0) {
				return &exitError{code: 1, err: fmt.Errorf("corpus score below the bar")}
			}
			return nil
		},
	}
	score.Flags().BoolVarP(&verbose, "verbose", "v", false, "list every case, not only the misses")
	score.Flags().BoolVar(&strict, "strict", false, "exit 1 when the score is below the done bar")
	cmd.AddCommand(score)
	return cmd
}

func writeScore(w io.Writer, sc classify.Score, verbose bool) {
	fmt.Fprintf(w, "corpus: %d failing logs, %d passing logs\n\n", sc.Failing, sc.Passing)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "detection rate\t%5.1f%%\t(%d/%d)\n", sc.DetectionRate(), sc.Detected, sc.Failing)
	fmt.Fprintf(tw, "category accuracy\t%5.1f%%\t(%d/%d)\n", sc.CategoryAccuracy(), sc.Category, sc.Failing)
	fmt.Fprintf(tw, "root cause in first excerpt\t%5.1f%%\t(%d/%d)\n", sc.RootCauseRate(), sc.RootInExcerpt, sc.Failing)
	fmt.Fprintf(tw, "location recall\t%5.1f%%\t(%d/%d)\n", sc.LocationRecall(), sc.LocationsFound, sc.LocationsWant)
	fmt.Fprintf(tw, "failing-test recall\t%5.1f%%\t(%d/%d)\n", sc.TestRecall(), sc.TestsFound, sc.TestsWant)
	fmt.Fprintf(tw, "false positives on passing logs\t%d\t(of %d)\n", sc.FalsePositives, sc.Passing)
	tw.Flush()
	var misses int
	for _, c := range sc.Cases {
		if c.OK() && !verbose {
			continue
		}
		if misses == 0 {
			fmt.Fprintln(w)
		}
		misses++
		status := "ok  "
		if !c.OK() {
			status = "MISS"
		}
		first := "(none)"
		if len(c.Result.Failures) > 0 {
			f := c.Result.Failures[0]
			first = fmt.Sprintf("[%s] %s", f.Category, f.Title)
		}
		fmt.Fprintf(w, "%s %s: %s\n", status, c.Name, first)
		for _, p := range c.Problems {
			fmt.Fprintf(w, "       - %s\n", p)
		}
	}
}
