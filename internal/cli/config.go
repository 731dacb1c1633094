package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kitewatch/kitewatch/internal/config"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/store/postgres"
	"github.com/kitewatch/kitewatch/internal/store/sqlite"
	"github.com/kitewatch/kitewatch/internal/web/middleware"
)

// settings binds the server configuration to flags and KITEWATCH_*
// environment variables. Precedence: flag, then environment (or its _FILE
// twin for secrets), then the default.
type settings struct {
	cfg     config.Config
	proxies []string
	envErrs []error
}

// envName is the environment variable for a flag: --data-dir → KITEWATCH_DATA_DIR.
func envName(flag string) string {
	return "KITEWATCH_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// secretFlags may be given through a *_FILE variable.
var secretFlags = map[string]bool{"database-url": true, "key-url": true, "previous-key-urls": true}

func (s *settings) envString(name, def string) string {
	env := envName(name)
	if secretFlags[name] {
		if path := os.Getenv(env + "_FILE"); path != "" {
			v, err := config.ReadSecretFile(path)
			if err != nil {
				s.envErrs = append(s.envErrs, fmt.Errorf("%s_FILE: %w", env, err))
				return def
			}
			return v
		}
	}
	if v, ok := os.LookupEnv(env); ok {
		return v
	}
	return def
}

func (s *settings) envDuration(name string, def time.Duration) time.Duration {
	v := s.envString(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		s.envErrs = append(s.envErrs, fmt.Errorf("%s=%q: want a duration such as 60s or 6h", envName(name), v))
		return def
	}
	return d
}

func (s *settings) envBool(name string, def bool) bool {
	v := s.envString(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		s.envErrs = append(s.envErrs, fmt.Errorf("%s=%q: want true or false", envName(name), v))
		return def
	}
	return b
}

// bindDatabase registers the flags every database-touching command shares.
func (s *settings) bindDatabase(fs *pflag.FlagSet) {
	d := config.Default()
	fs.StringVar(&s.cfg.DataDir, "data-dir", s.envString("data-dir", d.DataDir), "directory for the SQLite database and the local key file [KITEWATCH_DATA_DIR]")
	fs.StringVar(&s.cfg.DatabaseURL, "database-url", s.envString("database-url", ""), "PostgreSQL URL (postgres://...); empty for the embedded SQLite database [KITEWATCH_DATABASE_URL, _FILE]")
	fs.StringVar(&s.cfg.KeyURL, "key-url", s.envString("key-url", ""), "key encryption key: empty for a key file in the data dir, file:///path, base64key://... [KITEWATCH_KEY_URL, _FILE]")
	fs.StringSliceVar(&s.cfg.PreviousKeyURLs, "previous-key-urls", splitList(s.envString("previous-key-urls", "")), "older key encryption keys still accepted for reading, during a key rotation [KITEWATCH_PREVIOUS_KEY_URLS, _FILE]")
	fs.StringVar(&s.cfg.LogFormat, "log-format", s.envString("log-format", d.LogFormat), "log format: text or json [KITEWATCH_LOG_FORMAT]")
	fs.StringVar(&s.cfg.LogLevel, "log-level", s.envString("log-level", d.LogLevel), "log level: debug, info, warn, error [KITEWATCH_LOG_LEVEL]")
}

// bindServer registers the flags of serve.
func (s *settings) bindServer(fs *pflag.FlagSet) {
	d := config.Default()
	s.bindDatabase(fs)
	fs.StringVar(&s.cfg.Addr, "addr", s.envString("addr", d.Addr), "HTTP listen address [KITEWATCH_ADDR]")
	fs.StringVar(&s.cfg.PublicURL, "public-url", s.envString("public-url", ""), "external base URL, e.g. https://kitewatch.example.com (default http://<addr>) [KITEWATCH_PUBLIC_URL]")
	fs.DurationVar(&s.cfg.PollInterval, "poll-interval", s.envDuration("poll-interval", d.PollInterval), "how often each connected Buildkite organization is polled [KITEWATCH_POLL_INTERVAL]")
	fs.DurationVar(&s.cfg.RecheckInterval, "recheck-interval", s.envDuration("recheck-interval", d.RecheckInterval), "how often connected Buildkite tokens are re-verified [KITEWATCH_RECHECK_INTERVAL]")
	fs.StringVar(&s.cfg.BuildkiteAPIURL, "buildkite-api-url", s.envString("buildkite-api-url", d.BuildkiteAPIURL), "Buildkite REST API base URL [KITEWATCH_BUILDKITE_API_URL]")
	fs.BoolVar(&s.cfg.Demo, "demo", s.envBool("demo", false), "run the Buildkite simulator in-process with demo data and point kitewatch at it [KITEWATCH_DEMO]")
	fs.StringSliceVar(&s.proxies, "trusted-proxies", splitList(s.envString("trusted-proxies", "")), "CIDRs of reverse proxies whose X-Forwarded-For is trusted [KITEWATCH_TRUSTED_PROXIES]")
	fs.Int64Var(&s.cfg.MaxBodyBytes, "max-body-bytes", int64(envInt(s, "max-body-bytes", int(d.MaxBodyBytes))), "largest accepted request body [KITEWATCH_MAX_BODY_BYTES]")
	fs.DurationVar(&s.cfg.SessionTTL, "session-ttl", s.envDuration("session-ttl", d.SessionTTL), "how long an idle browser session lasts [KITEWATCH_SESSION_TTL]")
}

func envInt(s *settings, name string, def int) int {
	v := s.envString(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		s.envErrs = append(s.envErrs, fmt.Errorf("%s=%q: want a number", envName(name), v))
		return def
	}
	return n
}

func splitList(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// validate finishes and checks the configuration as a whole.
func (s *settings) validate(server bool) (config.Config, error) {
	c := s.cfg
	errs := append([]error(nil), s.envErrs...)
	for _, p := range s.proxies {
		pfx, err := netip.ParsePrefix(strings.TrimSpace(p))
		if err != nil {
			errs = append(errs, fmt.Errorf("--trusted-proxies %q: want a CIDR such as 10.0.0.0/8", p))
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, pfx)
	}
	if !server {
		// Commands that only touch the database need no server settings.
		d := config.Default()
		c.Addr, c.PollInterval, c.RecheckInterval, c.BuildkiteAPIURL, c.MaxBodyBytes, c.SessionTTL =
			d.Addr, d.PollInterval, d.RecheckInterval, d.BuildkiteAPIURL, d.MaxBodyBytes, d.SessionTTL
	}
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return c, joinErrs(errs)
	}
	return c, nil
}

func joinErrs(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("%s", strings.Join(msgs, "\n"))
}

// newLogger builds the process logger; secrets in attributes are masked.
func newLogger(w io.Writer, c config.Config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	if c.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(middleware.NewRedactingHandler(h))
}

// openDB opens the configured database (SQLite in the data dir, or PostgreSQL).
func openDB(ctx context.Context, c config.Config) (*store.DB, error) {
	if c.UsesPostgres() {
		return postgres.Open(ctx, c.DatabaseURL, store.Options{})
	}
	if err := c.EnsureDataDir(); err != nil {
		return nil, err
	}
	return sqlite.Open(ctx, c.SQLitePath(), store.Options{})
}

// withDB opens and migrates the database for a command and closes it after.
func withDB(cmd *cobra.Command, s *settings, fn func(ctx context.Context, db *store.DB, c config.Config) error) error {
	c, err := s.validate(false)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	db, err := openDB(ctx, c)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	return fn(ctx, db, c)
}
