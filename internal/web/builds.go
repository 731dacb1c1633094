package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// Detection is what the build-detection routes need besides the store:
// webhook intake and its setup, diagnostics, polling and backfills.
type Detection interface {
	// WebhookHandler receives POST /webhooks/buildkite/{endpoint_id}.
	WebhookHandler() http.Handler
	// ConfigureWebhook creates or rotates the endpoint and returns its setup
	// (shown once).
	ConfigureWebhook(ctx context.Context, org ci.Org, mode string) (any, error)
	// WebhookStatus describes the endpoint without its secret.
	WebhookStatus(ctx context.Context, org ci.Org) (any, error)
	// Diagnostics runs the missing-build-data checks.
	Diagnostics(ctx context.Context, org ci.Org) (any, error)
	// PollNow polls the organization once and reports what it did.
	PollNow(ctx context.Context, org ci.Org) (any, error)
	// StartBackfill enqueues a backfill of builds created since.
	StartBackfill(ctx context.Context, org ci.Org, since time.Time) (any, error)
}

// buildRoutes registers the pipeline and build API and pages.
func (s *Server) buildRoutes() {
	s.mux.Handle("GET /api/v1/orgs/{org}/pipelines", s.orgAPI(roleMember, s.listPipelines))
	s.mux.Handle("GET /api/v1/orgs/{org}/builds", s.orgAPI(roleMember, s.listBuilds))
	s.mux.Handle("GET /api/v1/orgs/{org}/builds/{id}", s.orgAPI(roleMember, s.getBuild))
	s.mux.Handle("GET /orgs/{org}/builds", s.orgUI(roleMember, s.buildsPage))
	s.mux.Handle("GET /orgs/{org}/builds/{id}", s.orgUI(roleMember, s.buildPage))
}

// MountDetection registers the routes that need build detection: the
// webhook intake (authenticated by its signature, not by the API wrappers)
// and the admin API for webhooks, diagnostics, polling and backfills.
func (s *Server) MountDetection(d Detection) {
	s.mux.Handle("POST /webhooks/buildkite/{endpoint_id}", d.WebhookHandler())
	base := "/api/v1/orgs/{org}/integrations/buildkite/"
	s.mux.Handle("GET "+base+"webhook", s.orgAPI(roleMember, func(w http.ResponseWriter, r *http.Request, p *principal) error {
		st, err := d.WebhookStatus(r.Context(), *p.Org)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, st)
		return nil
	}))
	s.mux.Handle("POST "+base+"webhook", s.orgAPI(roleAdmin, func(w http.ResponseWriter, r *http.Request, p *principal) error {
		var in struct {
			Mode string `json:"mode"`
		}
		if r.ContentLength != 0 {
			if err := decodeJSON(r, &in); err != nil {
				return err
			}
		}
		setup, err := d.ConfigureWebhook(r.Context(), *p.Org, in.Mode)
		if err != nil {
			return err
		}
		s.audit(r, ci.AuditEvent{OrgID: &p.Org.ID, Actor: p.User.Email, Action: "buildkite.webhook.configure",
			Target: "buildkite", Outcome: ci.OutcomeSuccess, ClientIP: clientIP(r), Details: map[string]string{"mode": in.Mode}})
		writeJSON(w, http.StatusCreated, setup)
		return nil
	}))
	s.mux.Handle("GET "+base+"diagnostics", s.orgAPI(roleMember, func(w http.ResponseWriter, r *http.Request, p *principal) error {
		checks, err := d.Diagnostics(r.Context(), *p.Org)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"checks": checks})
		return nil
	}))
	s.mux.Handle("POST "+base+"poll", s.orgAPI(roleAdmin, func(w http.ResponseWriter, r *http.Request, p *principal) error {
		rep, err := d.PollNow(r.Context(), *p.Org)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, rep)
		return nil
	}))
	s.mux.Handle("POST "+base+"backfill", s.orgAPI(roleAdmin, func(w http.ResponseWriter, r *http.Request, p *principal) error {
		var in struct {
			Since string `json:"since"`
		}
		if err := decodeJSON(r, &in); err != nil {
			return err
		}
		since, err := ParseSince(in.Since, s.db.Now())
		if err != nil {
			return err
		}
		st, err := d.StartBackfill(r.Context(), *p.Org, since)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusAccepted, st)
		return nil
	}))
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
