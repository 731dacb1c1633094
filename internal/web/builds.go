package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// Detection is what the build-detection routes need besides the store:
// webhook intake and its setup, diagnostics, polling and backfills. The
// API handlers and the HTML pages both call it, through one helper per
// action (see ui_detection.go).
type Detection interface {
	// WebhookHandler receives POST /webhooks/buildkite/{endpoint_id}.
	WebhookHandler() http.Handler
	// ConfigureWebhook creates or rotates the endpoint and returns its setup,
	// secret included (shown once). mode is ci.WebhookModeSignature (also
	// when "") or ci.WebhookModeToken; any other mode is ci.ErrInvalid.
	ConfigureWebhook(ctx context.Context, org ci.Org, mode string) (WebhookSetup, error)
	// WebhookStatus describes the endpoint without its secret; Configured is
	// false when there is none.
	WebhookStatus(ctx context.Context, org ci.Org) (WebhookStatus, error)
	// Diagnostics runs the missing-build-data checks, in a stable order.
	Diagnostics(ctx context.Context, org ci.Org) ([]DiagnosticCheck, error)
	// PollNow polls the organization once and reports what it did. It fails
	// with ci.ErrConflict when Buildkite is not connected; a poll that
	// stopped part way is a result with Error set, not an error.
	PollNow(ctx context.Context, org ci.Org) (PollResult, error)
	// StartBackfill enqueues a backfill of builds created since. It fails
	// with ci.ErrConflict when Buildkite is not connected.
	StartBackfill(ctx context.Context, org ci.Org, since time.Time) (BackfillStarted, error)
}

// WebhookSetup is what an admin needs to configure the webhook in
// Buildkite, answered once when the endpoint is created or rotated.
type WebhookSetup struct {
	URL          string   `json:"url"`
	Token        string   `json:"token"`
	Mode         string   `json:"mode"`
	Events       []string `json:"events"`
	Instructions string   `json:"instructions"`
}

// Weaker reports whether the endpoint authenticates by plain token.
func (w WebhookSetup) Weaker() bool { return w.Mode == ci.WebhookModeToken }

// WebhookStatus describes an organization's webhook endpoint. It never
// holds the secret.
type WebhookStatus struct {
	Configured     bool       `json:"configured"`
	URL            string     `json:"url,omitempty"`
	Mode           string     `json:"mode,omitempty"`
	Weaker         bool       `json:"weaker,omitempty"`
	Events         []string   `json:"events,omitempty"`
	CreatedAt      *time.Time `json:"created_at,omitempty"`
	RotatedAt      *time.Time `json:"rotated_at,omitempty"`
	LastDeliveryAt *time.Time `json:"last_delivery_at"`
	// Deliveries24h counts deliveries received in the last day, Unprocessed
	// those of them not processed.
	Deliveries24h int `json:"deliveries_24h"`
	Unprocessed   int `json:"unprocessed_24h"`
}

// DiagnosticCheck is one "missing build data" diagnostic. Status is "pass",
// "warn", "fail" or "not_checked".
type DiagnosticCheck struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Remedy  string `json:"remedy,omitempty"`
}

// PollResult is what one poll did. Error, when set, says why it stopped
// part way; Report still counts what it did until then.
type PollResult struct {
	Error  string     `json:"error,omitempty"`
	Report PollReport `json:"report"`
}

// PollReport counts the work of one poll.
type PollReport struct {
	Calls  int `json:"api_calls"`
	Builds int `json:"builds"`
	// Complete is false when the request budget cut the run short; the next
	// run resumes where it stopped.
	Complete bool `json:"complete"`
}

// BackfillStarted confirms an enqueued backfill.
type BackfillStarted struct {
	Since  time.Time `json:"since"`
	Status string    `json:"status"` // always "started"
}

// buildRoutes registers the pipeline and build API and pages.
func (s *Server) buildRoutes() {
	s.mux.Handle("GET /api/v1/orgs/{org}/pipelines", s.orgAPI(roleMember, s.listPipelines))
	s.mux.Handle("GET /api/v1/orgs/{org}/builds", s.orgAPI(roleMember, s.listBuilds))
	s.mux.Handle("GET /api/v1/orgs/{org}/builds/{id}", s.orgAPI(roleMember, s.getBuild))
	s.mux.Handle("GET /orgs/{org}/builds", s.orgUI(roleMember, s.buildsPage))
	s.mux.Handle("GET /orgs/{org}/builds/{id}", s.orgUI(roleMember, s.buildPage))
}

// MountDetection keeps d for the detection pages and registers the routes
// that need it: the webhook intake (authenticated by its signature, not by
// the API wrappers) and the admin API for webhooks, diagnostics, polling
// and backfills. Call it once, before serving.
func (s *Server) MountDetection(d Detection) {
	s.detection = d
	s.mux.Handle("POST /webhooks/buildkite/{endpoint_id}", d.WebhookHandler())
	base := "/api/v1/orgs/{org}/integrations/buildkite/"
	s.mux.Handle("GET "+base+"webhook", s.orgAPI(roleMember, s.apiWebhookStatus))
	s.mux.Handle("POST "+base+"webhook", s.orgAPI(roleAdmin, s.apiConfigureWebhook))
	s.mux.Handle("GET "+base+"diagnostics", s.orgAPI(roleMember, s.apiDiagnostics))
	s.mux.Handle("POST "+base+"poll", s.orgAPI(roleAdmin, s.apiPollNow))
	s.mux.Handle("POST "+base+"backfill", s.orgAPI(roleAdmin, s.apiStartBackfill))
}

func (s *Server) apiWebhookStatus(w http.ResponseWriter, r *http.Request, p *principal) error {
	st, err := s.webhookStatusOf(r.Context(), *p.Org)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) apiConfigureWebhook(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Mode string `json:"mode"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &in); err != nil {
			return err
		}
	}
	setup, err := s.configureWebhook(r, p, in.Mode)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, setup)
	return nil
}

func (s *Server) apiDiagnostics(w http.ResponseWriter, r *http.Request, p *principal) error {
	checks, err := s.diagnostics(r.Context(), *p.Org)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"checks": checks})
	return nil
}

func (s *Server) apiPollNow(w http.ResponseWriter, r *http.Request, p *principal) error {
	res, err := s.pollNow(r.Context(), *p.Org)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) apiStartBackfill(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Since string `json:"since"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	started, err := s.startBackfill(r.Context(), *p.Org, in.Since)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, started)
	return nil
}

// ParseSince reads a backfill start: a duration back from now ("7d", "36h")
// or an RFC 3339 time. It refuses more than 90 days.
func ParseSince(v string, now time.Time) (time.Time, error) {
	bad := ci.Errorf(ci.ErrInvalid, "invalid_since", `since must be a duration such as "7d" or "36h", or an RFC 3339 time, within 90 days`)
	if v == "" {
		return time.Time{}, bad
	}
	var t time.Time
	if ts, err := time.Parse(time.RFC3339, v); err == nil {
		t = ts
	} else {
		d, err := time.ParseDuration(v)
		if n, derr := strconv.Atoi(v[:len(v)-1]); v[len(v)-1] == 'd' && derr == nil {
			d, err = time.Duration(n)*24*time.Hour, nil
		}
		if err != nil || d <= 0 {
			return time.Time{}, bad
		}
		t = now.Add(-d)
	}
	if now.Sub(t) > 90*24*time.Hour || t.After(now) {
		return time.Time{}, bad
	}
	return t, nil
}

func (s *Server) listPipelines(w http.ResponseWriter, r *http.Request, p *principal) error {
	ps, err := s.db.Pipelines(r.Context(), p.Org.ID)
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []ci.Pipeline{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"pipelines": ps})
	return nil
}

// buildFilter reads the list filters from the query string.
func buildFilter(r *http.Request, orgID int64) (ci.BuildFilter, error) {
	q := r.URL.Query()
	f := ci.BuildFilter{OrgID: orgID, Pipeline: q.Get("pipeline"), Branch: q.Get("branch"), State: q.Get("state"),
		Commit: q.Get("commit")}
	for name, dst := range map[string]*int64{"before": &f.BeforeID} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return f, ci.Errorf(ci.ErrInvalid, "invalid_filter", "%s must be a positive build id", name)
			}
			*dst = n
		}
	}
	for name, dst := range map[string]*int{"pull_request": &f.PullRequest, "limit": &f.Limit} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return f, ci.Errorf(ci.ErrInvalid, "invalid_filter", "%s must be a positive number", name)
			}
			*dst = n
		}
	}
	f.Limit = min(max(f.Limit, 0), 200)
	if f.Limit == 0 {
		f.Limit = 50
	}
	return f, nil
}

func (s *Server) listBuilds(w http.ResponseWriter, r *http.Request, p *principal) error {
	f, err := buildFilter(r, p.Org.ID)
	if err != nil {
		return err
	}
	bs, err := s.db.ListBuilds(r.Context(), f)
	if err != nil {
		return err
	}
	body := map[string]any{"builds": bs}
	if len(bs) == f.Limit {
		body["next_before"] = bs[len(bs)-1].ID
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// buildWithJobs is a build with its jobs, and each job's duration.
type buildWithJobs struct {
	ci.Build
	DurationSeconds float64   `json:"duration_seconds"`
	Jobs            []jobView `json:"jobs"`
}

type jobView struct {
	ci.Job
	DurationSeconds float64 `json:"duration_seconds"`
}

func (s *Server) loadBuild(r *http.Request, orgID int64) (buildWithJobs, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return buildWithJobs{}, ci.Errorf(ci.ErrNotFound, "not_found", "build not found")
	}
	b, err := s.db.Build(r.Context(), orgID, id)
	if err != nil {
		return buildWithJobs{}, err
	}
	jobs, err := s.db.Jobs(r.Context(), b.ID)
	if err != nil {
		return buildWithJobs{}, err
	}
	out := buildWithJobs{Build: b, DurationSeconds: b.Duration().Seconds(), Jobs: make([]jobView, len(jobs))}
	for i, j := range jobs {
		out.Jobs[i] = jobView{Job: j, DurationSeconds: j.Duration().Seconds()}
	}
	return out, nil
}

func (s *Server) getBuild(w http.ResponseWriter, r *http.Request, p *principal) error {
	b, err := s.loadBuild(r, p.Org.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}
