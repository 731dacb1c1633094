// Package config holds kitewatch's server configuration: a plain struct with
// defaults, filled from flags and KITEWATCH_* environment variables (with
// *_FILE twins for secrets), and validated as a whole.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is the whole server configuration.
type Config struct {
	// Addr is the HTTP listen address.
	Addr string
	// PublicURL is the externally visible base URL (for setup links, webhook
	// URLs and secure cookies). Defaults to http://<Addr>.
	PublicURL string
	// DataDir holds the SQLite database and the local key file.
	DataDir string
	// DatabaseURL selects PostgreSQL (postgres://...) instead of SQLite.
	DatabaseURL string
	// KeyURL selects the key encryption key: empty for a key file in DataDir,
	// file:///path, base64key://..., or a KMS URL in builds that include one.
	KeyURL string
	// PreviousKeyURLs are older key encryption keys that can still open
	// records during a key rotation (see kitewatch keys rotate).
	PreviousKeyURLs []string
	// LogFormat is "text" or "json"; LogLevel is debug, info, warn or error.
	LogFormat string
	LogLevel  string
	// PollInterval is how often each connected organization is polled.
	PollInterval time.Duration
	// RecheckInterval is how often connected Buildkite tokens are re-verified.
	RecheckInterval time.Duration
	// BuildkiteAPIURL is the Buildkite REST API base URL.
	BuildkiteAPIURL string
	// Demo runs the Buildkite simulator in-process and points kitewatch at it.
	Demo bool
	// TrustedProxies are proxies whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes bounds request bodies of the JSON API and forms.
	MaxBodyBytes int64
	// SessionTTL is how long an idle browser session lives.
	SessionTTL time.Duration
}

// Default returns the defaults.
func Default() Config {
	return Config{
		Addr:            "127.0.0.1:8080",
		DataDir:         "./kitewatch-data",
		LogFormat:       "text",
		LogLevel:        "info",
		PollInterval:    60 * time.Second,
		RecheckInterval: 6 * time.Hour,
		BuildkiteAPIURL: "https://api.buildkite.com",
		MaxBodyBytes:    1 << 20,
		SessionTTL:      7 * 24 * time.Hour,
	}
}

// Secure reports whether kitewatch is served over HTTPS (secure cookies, HSTS).
func (c Config) Secure() bool { return strings.HasPrefix(c.PublicURL, "https://") }

// UsesPostgres reports whether DatabaseURL selects PostgreSQL.
func (c Config) UsesPostgres() bool {
	return strings.HasPrefix(c.DatabaseURL, "postgres://") || strings.HasPrefix(c.DatabaseURL, "postgresql://")
}

// Validate checks the whole configuration and reports every problem at once.
// It fills derived defaults (PublicURL).
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("--addr %q: want host:port, e.g. 127.0.0.1:8080", c.Addr)
	}
	if c.PublicURL == "" {
		host, port, _ := net.SplitHostPort(c.Addr)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		c.PublicURL = "http://" + net.JoinHostPort(host, port)
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("--public-url %q: want an absolute http(s) URL such as https://kitewatch.example.com", c.PublicURL)
	} else {
		c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	}
	if c.DatabaseURL != "" && !c.UsesPostgres() {
		bad("--database-url: only postgres:// URLs are supported; leave it empty for the embedded SQLite database in --data-dir")
	}
	if c.DataDir == "" {
		bad("--data-dir must not be empty")
	}
	if c.KeyURL != "" {
		if i := strings.Index(c.KeyURL, "://"); i <= 0 {
			bad("--key-url: want a URL such as file:///etc/kitewatch/kek or base64key://...")
		}
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("--log-format %q: want text or json", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.PollInterval < 5*time.Second {
		bad("--poll-interval %s: must be at least 5s", c.PollInterval)
	}
	if c.RecheckInterval < time.Minute {
		bad("--recheck-interval %s: must be at least 1m", c.RecheckInterval)
	}
	if u, err := url.Parse(c.BuildkiteAPIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("--buildkite-api-url %q: want an absolute http(s) URL", c.BuildkiteAPIURL)
	}
	if c.MaxBodyBytes < 1024 {
		bad("--max-body-bytes %d: must be at least 1024", c.MaxBodyBytes)
	}
	if c.SessionTTL < time.Minute {
		bad("--session-ttl %s: must be at least 1m", c.SessionTTL)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration:\n  %w", joinIndented(errs))
	}
	return nil
}

type indented []error

func (e indented) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "\n  ")
}

func joinIndented(errs []error) error { return indented(errs) }

// SQLitePath is the embedded database file.
func (c Config) SQLitePath() string { return filepath.Join(c.DataDir, "kitewatch.db") }

// EnsureDataDir creates the data directory with mode 0700.
func (c Config) EnsureDataDir() error {
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory %s: %w", c.DataDir, err)
	}
	fi, err := os.Stat(c.DataDir)
	if err != nil {
		return fmt.Errorf("inspect data directory: %w", err)
	}
	if !fi.IsDir() {
		return errors.New("data directory " + c.DataDir + " is not a directory")
	}
	return nil
}

// ReadSecretFile reads a secret from a *_FILE path, trimming one trailing newline.
func ReadSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret file %s: %w", path, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
