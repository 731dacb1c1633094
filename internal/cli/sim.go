package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
)

// newSimCmd runs the Buildkite simulator on its own, on the demo scenario or
// a scenario file, until the root context is cancelled.
func newSimCmd(e *env) *cobra.Command {
	var addr, scenarioPath string
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run the Buildkite simulator (REST API, logs, Test Engine, webhooks)",
		Long: "Run a simulated Buildkite on --addr, serving the demo scenario or --scenario FILE.\n" +
			"Point kitewatch or curl at it with one of the printed tokens; /_sim/ is its control API.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sc := bksim.Demo()
			if scenarioPath != "" {
				var err error
				if sc, err = bksim.LoadScenario(scenarioPath); err != nil {
					return err
				}
			}
			return runSim(cmd.Context(), e, addr, sc)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:9292", "address to listen on")
	cmd.Flags().StringVar(&scenarioPath, "scenario", "", "scenario file (JSON, see docs/simulator.md); default: the built-in demo")
	return cmd
}

func runSim(ctx context.Context, e *env, addr string, sc *bksim.Scenario) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for simulator on %s: %w", addr, err)
	}
	sim := bksim.New(sc)
	defer sim.Close()
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(e.stdout, "Buildkite simulator listening on %s\n", base)
	fmt.Fprintf(e.stdout, "Tokens (use as: curl -H \"Authorization: Bearer <token>\" %s/v2/access-token):\n", base)
	for _, t := range sc.Tokens() {
		fmt.Fprintf(e.stdout, "  %-14s %s  %s\n", t.Name, t.Value, t.Purpose)
	}
	fmt.Fprintf(e.stdout, "Control API: %s/_sim/  (Ctrl-C to stop)\n", base)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve simulator: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sim.Close() // release hung requests so shutdown can finish
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shut down simulator: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve simulator: %w", err)
	}
	return nil
}
