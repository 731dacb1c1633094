// Package app assembles the whole kitewatch server — HTTP surface, task
// queue and periodic work — from configuration and opened dependencies, and
// runs it until its context ends. Tests start it on 127.0.0.1:0.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"

	"github.com/kitewatch/kitewatch/internal/config"
	"github.com/kitewatch/kitewatch/internal/integration"
	"github.com/kitewatch/kitewatch/internal/secrets"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/tasks"
	"github.com/kitewatch/kitewatch/internal/web"
)

// Deps are the opened dependencies the app runs on. The app owns them from
// New on and closes them in Close.
type Deps struct {
	DB     *store.DB
	Logger *slog.Logger
	// Keys seals and opens stored secrets.
	Keys *secrets.Keyring
	// BuildkiteHTTP is the transport for Buildkite calls; nil for the default.
	BuildkiteHTTP *http.Client
	// Out receives operator messages (the setup URL); nil discards them.
	Out io.Writer
	// OnWebhookConfigured, when set, is called after an organization's
	// webhook endpoint is created or rotated, with its URL, secret and mode.
	// Demo mode uses it to register the endpoint with the in-process
	// simulator; it must never log the secret.
	OnWebhookConfigured func(url, secret, mode string)
}

// App is a configured kitewatch server.
type App struct {
	cfg          config.Config
	db           *store.DB
	logger       *slog.Logger
	out          io.Writer
	queue        *tasks.Queue
	integrations *integration.Service
	web          *web.Server
	registry     *prometheus.Registry
	ln           net.Listener
	srv          *http.Server
	detect       *detection
}

// New migrates the database and builds the server. It does not listen yet.
func New(ctx context.Context, cfg config.Config, d Deps) (*App, error) {
	if d.Out == nil {
		d.Out = io.Discard
	}
	a := &App{cfg: cfg, db: d.DB, logger: d.Logger, out: d.Out, registry: prometheus.NewRegistry()}
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(d.DB.Writer(), d.DB.Dialect().Name()), newTaskCollector(d.DB))
	if _, err := d.DB.Migrate(ctx); err != nil {
		return nil, err
	}
	a.integrations = integration.New(integration.Options{DB: d.DB, Keys: d.Keys, BaseURL: cfg.BuildkiteAPIURL,
		HTTPClient: d.BuildkiteHTTP, Logger: d.Logger, OnConnected: a.pollSoon})
	a.queue = tasks.New(d.DB, d.Logger)
	tasks.Register(a.queue, &tasks.CleanupWorker{DB: d.DB})
	a.queue.Every(15*time.Minute, "cleanup_expired", func() river.JobArgs { return tasks.CleanupArgs{} }, true)
	tasks.Handle(a.queue, func(ctx context.Context, _ recheckArgs) error { return a.integrations.RecheckAll(ctx) })
	a.queue.Every(cfg.RecheckInterval, "recheck_buildkite", func() river.JobArgs { return recheckArgs{} }, false)
	a.web = web.New(web.Options{
		DB: d.DB, Logger: d.Logger, Registry: a.registry, PublicURL: cfg.PublicURL, Secure: cfg.Secure(),
		MaxBodyBytes: cfg.MaxBodyBytes, SessionTTL: cfg.SessionTTL, TrustedProxies: cfg.TrustedProxies,
		Integrations: a.integrations, PollInterval: cfg.PollInterval,
	})
	a.wireDetection(d)
	a.wireAnalysis()
	if err := a.queue.Init(tasks.Options{}); err != nil {
		return nil, err
	}
	return a, nil
}

// Listen binds the configured address (":0" picks a free port).
func (a *App) Listen() error {
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Addr, err)
	}
	a.ln = ln
	return nil
}

// Addr returns the address the server listens on, after Listen.
func (a *App) Addr() string { return a.ln.Addr().String() }

// URL returns the base URL of the listening server.
func (a *App) URL() string { return "http://" + a.Addr() }

// Run serves until ctx is done, then drains in-flight requests and running
// tasks (up to 30 seconds) and returns nil on a clean shutdown.
func (a *App) Run(ctx context.Context) error {
	if a.ln == nil {
		if err := a.Listen(); err != nil {
			return err
		}
	}
	handler, err := a.web.Handler()
	if err != nil {
		return err
	}
	a.srv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	}
	runCtx, cancelTasks := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelTasks()
	if err := a.queue.Start(runCtx); err != nil {
		return err
	}
	if link, err := web.NewSetupLink(ctx, a.db, a.cfg.PublicURL); err != nil {
		return err
	} else if link != "" {
		fmt.Fprintf(a.out, "\nNo users yet. Open this one-time setup link within 1 hour to create the first admin and organization:\n\n  %s\n\n", link)
	}
	a.logger.Info("kitewatch listening", "addr", a.Addr(), "url", a.cfg.PublicURL, "database", a.db.Dialect().Name())
	errc := make(chan error, 1)
	go func() { errc <- a.srv.Serve(a.ln) }()
	select {
	case err := <-errc:
		_ = a.queue.Stop(context.Background())
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	a.logger.Info("shutting down: draining requests and tasks")
	drain, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	herr := a.srv.Shutdown(drain)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		herr = errors.Join(herr, err)
	}
	terr := a.queue.Stop(drain)
	return errors.Join(herr, terr)
}

// recheckArgs is the periodic re-verification of every Buildkite token.
type recheckArgs struct{}

func (recheckArgs) Kind() string { return "recheck_buildkite" }

// Integrations returns the Buildkite integration service.
func (a *App) Integrations() *integration.Service { return a.integrations }

// Queue returns the task queue.
func (a *App) Queue() *tasks.Queue { return a.queue }

// Close releases the database.
func (a *App) Close() error { return a.db.Close() }
