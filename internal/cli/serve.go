package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kitewatch/kitewatch/internal/app"
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
	db, err := openDB(ctx, c)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, c, app.Deps{DB: db, Logger: logger, Out: e.stdout})
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
