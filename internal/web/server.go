// Package web serves kitewatch's HTTP surface: the JSON API under /api/v1,
// the server-rendered HTML UI, webhooks intake, and the operational
// endpoints /healthz, /readyz and /metrics.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kitewatch/kitewatch/internal/auth"
	"github.com/kitewatch/kitewatch/internal/integration"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/web/middleware"
)

// Options configures a Server.
type Options struct {
	DB             *store.DB
	Logger         *slog.Logger
	Registry       *prometheus.Registry
	PublicURL      string
	Secure         bool
	MaxBodyBytes   int64
	SessionTTL     time.Duration
	TrustedProxies []netip.Prefix
	// Ready reports extra readiness conditions (task queue running...).
	Ready func(ctx context.Context) error
	// Integrations manages the Buildkite connection.
	Integrations *integration.Service
	// PollInterval is how often the poller polls each organization, as
	// the pages tell users; zero means the default, one minute.
	PollInterval time.Duration
}

// Server is the HTTP surface.
type Server struct {
	Options
	db      *store.DB
	logger  *slog.Logger
	signins *auth.Limiter
	mux     *http.ServeMux
	// detection is the service MountDetection stored; nil when build
	// detection is not running.
	detection Detection
}

// New returns a server. Call Handler to serve it.
func New(opts Options) *Server {
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.SessionTTL == 0 {
		opts.SessionTTL = 7 * 24 * time.Hour
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Minute
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	s := &Server{Options: opts, db: opts.DB, logger: opts.Logger, signins: auth.NewLimiter(auth.DefaultLimiterConfig()),
		mux: http.NewServeMux()}
	pages() // parse every template at startup: a broken template fails here, not on a request
	s.routes()
	return s
}

// Handle registers an extra route (used to mount features built elsewhere).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler returns the whole HTTP handler with its middleware.
func (s *Server) Handler() (http.Handler, error) {
	metrics, err := middleware.NewMetrics(s.Registry)
	if err != nil {
		return nil, err
	}
	csrf, err := middleware.CSRF(middleware.CSRFOptions{TrustedOrigins: []string{s.PublicURL}})
	if err != nil {
		return nil, err
	}
	return middleware.Chain(middleware.CaptureRoute(s.mux),
		middleware.RequestID,
		middleware.RealIP(s.TrustedProxies),
		middleware.AccessLog(s.logger),
		metrics.Middleware,
		middleware.Recover(s.logger),
		middleware.SecurityHeaders(middleware.SecurityOptions{TLS: s.Secure}),
		middleware.BodyLimit(s.MaxBodyBytes),
		csrf,
	), nil
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))

	s.mux.Handle("GET /api/v1/user", s.api(s.getUser))
	s.mux.Handle("GET /api/v1/user/tokens", s.api(s.listTokens))
	s.mux.Handle("POST /api/v1/user/tokens", s.api(s.createToken))
	s.mux.Handle("DELETE /api/v1/user/tokens/{id}", s.api(s.revokeToken))
	s.mux.Handle("GET /api/v1/orgs/{org}", s.orgAPI(roleMember, s.getOrg))
	s.mux.Handle("GET /api/v1/orgs/{org}/members", s.orgAPI(roleMember, s.listMembers))
	s.mux.Handle("POST /api/v1/orgs/{org}/members", s.orgAPI(roleAdmin, s.addMember))
	s.mux.Handle("PATCH /api/v1/orgs/{org}/members/{user_id}", s.orgAPI(roleAdmin, s.updateMember))
	s.mux.Handle("DELETE /api/v1/orgs/{org}/members/{user_id}", s.orgAPI(roleAdmin, s.removeMember))
	s.mux.Handle("GET /api/v1/orgs/{org}/audit", s.orgAPI(roleAdmin, s.listAudit))
	s.integrationRoutes()
	s.buildRoutes()
	s.mux.Handle("/api/", s.api(func(w http.ResponseWriter, r *http.Request, _ *principal) error {
		return errNoRoute
	}))
	s.uiRoutes()
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	problem := ""
	if err := s.db.Ping(ctx); err != nil {
		problem = "database unreachable"
	} else if pending, err := s.db.Pending(ctx); err != nil || pending {
		problem = "database migrations are not current: run kitewatch migrate"
	} else if s.Ready != nil {
		if err := s.Ready(ctx); err != nil {
			problem = err.Error()
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if problem != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: " + problem + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}
