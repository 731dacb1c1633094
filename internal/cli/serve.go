package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/kitewatch/kitewatch/internal/app"
	"github.com/kitewatch/kitewatch/internal/bk/bksim"
	"github.com/kitewatch/kitewatch/internal/config"
)

func newServeCmd(e *env) *cobra.Command {
	s := &settings{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the kitewatch server",
		Long: `Run the kitewatch server: the web UI, the JSON API, webhook intake and the
background work. With no database URL it uses an embedded SQLite database in
--data-dir. On first start it prints a one-time setup link.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := s.validate(true)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), e, c)
		},
	}
	s.bindServer(cmd.Flags())
	return cmd
}

func serve(ctx context.Context, e *env, c config.Config) error {
	logger := newLogger(e.stderr, c)
	var deps app.Deps
	var a *app.App
	if c.Demo {
		sim, stop, err := startDemoSimulator(ctx, e, &c)
		if err != nil {
			return err
		}
		defer stop()
		hooks := &demoWebhooks{sim: sim, base: func() string { return a.URL() }, interval: demoBuildEvery,
			step: 5 * time.Second, out: e.stdout}
		defer hooks.close()
		deps.OnWebhookConfigured = hooks.configured
	}
	db, err := openDB(ctx, c)
	if err != nil {
		return err
	}
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		return err
	}
	keys, err := openKeyring(ctx, c, db)
	if err != nil {
		db.Close()
		return err
	}
	defer keys.Close() // after a.Close: KMS keepers hold clients
	deps.DB, deps.Logger, deps.Out, deps.Keys = db, logger, e.stdout, keys
	a, err = app.New(ctx, c, deps)
	if err != nil {
		db.Close()
		return err
	}
	defer a.Close()
	if err := a.Listen(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "kitewatch %s serving on %s\n", Version, c.PublicURL)
	return a.Run(ctx)
}

func newMigrateCmd(e *env) *cobra.Command {
	s := &settings{}
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations and exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := s.validate(false)
			if err != nil {
				return err
			}
			db, err := openDB(cmd.Context(), c)
			if err != nil {
				return err
			}
			defer db.Close()
			n, err := db.Migrate(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s database is up to date (%d migrations applied now)\n", db.Dialect().Name(), n)
			return nil
		},
	}
	s.bindDatabase(cmd.Flags())
	return cmd
}

// startDemoSimulator runs the Buildkite simulator with the demo scenario on
// a loopback port, points c at it and prints the demo tokens.
func startDemoSimulator(ctx context.Context, e *env, c *config.Config) (sim *bksim.Server, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("start the demo Buildkite simulator: %w", err)
	}
	base := "http://" + ln.Addr().String()
	sc := bksim.Demo()
	sim = bksim.New(sc, bksim.WithBaseURL(base))
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(e.stderr, "demo simulator stopped:", err)
		}
	}()
	c.BuildkiteAPIURL = base
	fmt.Fprintf(e.stdout, "Demo mode: a simulated Buildkite API is running at %s (no real Buildkite is contacted).\n", base)
	fmt.Fprintln(e.stdout, "Demo Buildkite tokens to paste into Settings → Integrations → Buildkite:")
	for _, t := range sc.Tokens() {
		fmt.Fprintf(e.stdout, "  %-15s %s  %s\n", t.Name, t.Value, t.Purpose)
	}
	fmt.Fprintln(e.stdout, "Configure the webhook on the Buildkite integration page: the simulator will then deliver signed webhooks and start a build every minute.")
	return sim, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		sim.Close()
	}, nil
}
