package web

import (
	"context"
	"fmt"
	"net/http"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// The detection actions (configure the webhook, read its status, run the
// diagnostics, poll now, start a backfill) each have one helper below that
// both the JSON API (builds.go) and the HTML forms call: the helper holds
// what the two surfaces share, such as the audit event of configuring a
// webhook, so each action is recorded once whichever surface triggered it.
// The surfaces keep only their own concerns: decoding, status codes,
// flashes and pages. Access checks are the routes' (orgAPI, orgUI).

// errNoDetection is returned when build detection is not mounted on this
// server (some tests run the web package alone).
var errNoDetection = ci.Errorf(ci.ErrConflict, "detection_unavailable", "build detection is not running on this server")

// detectionService returns the service MountDetection stored, or
// errNoDetection.
func (s *Server) detectionService() (Detection, error) {
	if s.detection == nil {
		return nil, errNoDetection
	}
	return s.detection, nil
}

// configureWebhook creates or rotates the webhook endpoint of p's
// organization and records the audit event of it.
func (s *Server) configureWebhook(r *http.Request, p *principal, mode string) (WebhookSetup, error) {
	d, err := s.detectionService()
	if err != nil {
		return WebhookSetup{}, err
	}
	setup, err := d.ConfigureWebhook(r.Context(), *p.Org, mode)
	if err != nil {
		return WebhookSetup{}, fmt.Errorf("configure webhook of org %d: %w", p.Org.ID, err)
	}
	s.audit(r, ci.AuditEvent{OrgID: &p.Org.ID, ActorID: p.actorID(), Actor: p.User.Email, Action: "buildkite.webhook.configure",
		Target: "buildkite", Outcome: ci.OutcomeSuccess, ClientIP: clientIP(r), Details: map[string]string{"mode": setup.Mode}})
	return setup, nil
}

// webhookStatusOf describes org's webhook endpoint.
func (s *Server) webhookStatusOf(ctx context.Context, org ci.Org) (WebhookStatus, error) {
	d, err := s.detectionService()
	if err != nil {
		return WebhookStatus{}, err
	}
	st, err := d.WebhookStatus(ctx, org)
	if err != nil {
		return WebhookStatus{}, fmt.Errorf("load webhook status of org %d: %w", org.ID, err)
	}
	return st, nil
}

// diagnostics runs org's missing-build-data checks.
func (s *Server) diagnostics(ctx context.Context, org ci.Org) ([]DiagnosticCheck, error) {
	d, err := s.detectionService()
	if err != nil {
		return nil, err
	}
	checks, err := d.Diagnostics(ctx, org)
	if err != nil {
		return nil, fmt.Errorf("run diagnostics of org %d: %w", org.ID, err)
	}
	return checks, nil
}

// pollNow polls Buildkite once for org.
func (s *Server) pollNow(ctx context.Context, org ci.Org) (PollResult, error) {
	d, err := s.detectionService()
	if err != nil {
		return PollResult{}, err
	}
	res, err := d.PollNow(ctx, org)
	if err != nil {
		return PollResult{}, fmt.Errorf("poll org %d: %w", org.ID, err)
	}
	return res, nil
}

// startBackfill enqueues a backfill of org's builds created since the
// start that since describes (see ParseSince).
func (s *Server) startBackfill(ctx context.Context, org ci.Org, since string) (BackfillStarted, error) {
	d, err := s.detectionService()
	if err != nil {
		return BackfillStarted{}, err
	}
	t, err := ParseSince(since, s.db.Now())
	if err != nil {
		return BackfillStarted{}, err
	}
	started, err := d.StartBackfill(ctx, org, t)
	if err != nil {
		return BackfillStarted{}, fmt.Errorf("start backfill of org %d: %w", org.ID, err)
	}
	return started, nil
}

// checkNames are the headings of the diagnostics, in plain words.
var checkNames = map[string]string{
	"token_scopes":            "Token can list builds",
	"pipelines_visible":       "Pipelines visible",
	"repositories_recognised": "Repositories recognised",
	"commit_status":           "Commit statuses",
	"pull_request_builds":     "Pull-request builds",
	"latest_builds":           "Recent builds",
	"webhooks":                "Webhook deliveries",
	"poller":                  "Poller",
	"git_provider":            "Git provider",
}

// Name is the check's heading.
func (c DiagnosticCheck) Name() string {
	if n, ok := checkNames[c.ID]; ok {
		return n
	}
	return c.ID
}

// View is the check's status in words, with an icon and a colour class.
func (c DiagnosticCheck) View() statusView {
	switch c.Status {
	case "pass":
		return statusView{Label: "Pass", Icon: "✓", Class: "ok"}
	case "warn":
		return statusView{Label: "Warning", Icon: "!", Class: "warn"}
	case "fail":
		return statusView{Label: "Fail", Icon: "✗", Class: "err"}
	}
	return statusView{Label: "Not checked", Icon: "–", Class: "none"}
}

// detectionData is the webhook and diagnostics panels of the Buildkite
// page. Unavailable is set when build detection is not running.
type detectionData struct {
	Unavailable bool
	Webhook     WebhookStatus
	Checks      []DiagnosticCheck
	// Counts of checks by status, for the panel's summary.
	Pass, Warn, Fail, NotChecked int
}

// detectionFor loads org's webhook status and diagnostics.
func (s *Server) detectionFor(ctx context.Context, org ci.Org) (*detectionData, error) {
	if s.detection == nil {
		return &detectionData{Unavailable: true}, nil
	}
	ws, err := s.webhookStatusOf(ctx, org)
	if err != nil {
		return nil, err
	}
	checks, err := s.diagnostics(ctx, org)
	if err != nil {
		return nil, err
	}
	d := &detectionData{Webhook: ws, Checks: checks}
	for _, c := range d.Checks {
		switch c.Status {
		case "pass":
			d.Pass++
		case "warn":
			d.Warn++
		case "fail":
			d.Fail++
		default:
			d.NotChecked++
		}
	}
	return d, nil
}

// detectionRoutes registers the admin forms of the detection panels.
func (s *Server) detectionRoutes() {
	base := "/orgs/{org}/settings/integrations/buildkite/"
	s.mux.Handle("POST "+base+"webhook", s.orgUI(roleAdmin, s.webhookForm))
	s.mux.Handle("POST "+base+"poll", s.orgUI(roleAdmin, s.pollForm))
	s.mux.Handle("POST "+base+"backfill", s.orgUI(roleAdmin, s.backfillForm))
}

// webhookCreated is the page that shows a new webhook secret, once.
type webhookCreated struct {
	Setup   WebhookSetup
	Rotated bool
}

// webhookForm creates or rotates the webhook endpoint and shows its URL and
// secret in the answer itself: never in a URL, a cookie or a later page.
func (s *Server) webhookForm(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	mode := r.PostFormValue("mode")
	if mode != ci.WebhookModeToken {
		mode = ci.WebhookModeSignature
	}
	var rotated bool
	if s.detection != nil {
		before, err := s.webhookStatusOf(r.Context(), *p.Org)
		if err != nil {
			return err
		}
		rotated = before.Configured
	}
	setup, err := s.configureWebhook(r, p, mode)
	if err != nil {
		if !formError(err) {
			return err
		}
		_, _, msg := errorStatus(err)
		s.redirectFlash(w, r, s.buildkitePath(p), flashError, sentence(msg))
		return nil
	}
	pg.Title, pg.Section, pg.Sub = "Webhook endpoint", "settings", "integrations"
	pg.Data = webhookCreated{Setup: setup, Rotated: rotated}
	s.render(w, r, http.StatusCreated, "buildkite_webhook", *pg)
	return nil
}

// pollForm polls Buildkite once for the organization.
func (s *Server) pollForm(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	res, err := s.pollNow(r.Context(), *p.Org)
	if err != nil {
		if !formError(err) {
			return err
		}
		_, _, msg := errorStatus(err)
		s.redirectFlash(w, r, s.buildkitePath(p), flashError, "Could not poll: "+sentence(msg))
		return nil
	}
	if res.Error != "" {
		s.redirectFlash(w, r, s.buildkitePath(p), flashError,
			fmt.Sprintf("The poll stopped after %s: %s", plural(res.Report.Calls, "API call"), sentence(res.Error)))
		return nil
	}
	msg := fmt.Sprintf("Polled Buildkite just now: %s seen with %s.", plural(res.Report.Builds, "build"), plural(res.Report.Calls, "API call"))
	if !res.Report.Complete {
		msg += " The request budget cut the run short; the next poll continues where it stopped."
	}
	s.redirectFlash(w, r, s.buildkitePath(p), flashOK, msg)
	return nil
}

// backfillForm starts a backfill of the last 7 days.
func (s *Server) backfillForm(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	if _, err := s.startBackfill(r.Context(), *p.Org, "7d"); err != nil {
		if !formError(err) {
			return err
		}
		_, _, msg := errorStatus(err)
		s.redirectFlash(w, r, s.buildkitePath(p), flashError, "Could not start the backfill: "+sentence(msg))
		return nil
	}
	s.redirectFlash(w, r, s.buildkitePath(p), flashOK,
		"Backfill of the last 7 days started: builds appear on the Builds page as kitewatch fetches them, within the request budget.")
	return nil
}
