package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// The pages about build detection (webhook panel, diagnostics, poll now,
// backfill) use the Detection service that MountDetection registers. The
// Server keeps no reference to it, only the JSON API routes that call it,
// so the pages call those routes in process: the same handler, the same
// service method, the same access checks and audit events as the API, and
// no second implementation. detectionAPI is that call.

// errNoDetection is returned when build detection is not mounted on this
// server (some tests run the web package alone).
var errNoDetection = ci.Errorf(ci.ErrConflict, "detection_unavailable", "build detection is not running on this server")

// memoryResponse is an in-memory http.ResponseWriter for in-process calls.
type memoryResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (m *memoryResponse) Header() http.Header { return m.header }
func (m *memoryResponse) Write(p []byte) (int, error) {
	if m.status == 0 {
		m.status = http.StatusOK
	}
	return m.body.Write(p)
}
func (m *memoryResponse) WriteHeader(status int) {
	if m.status == 0 {
		m.status = status
	}
}

// errorKinds maps an API status back to the error kind it came from, so a
// page shows the API's safe message the way it shows a service error.
var errorKinds = map[int]error{
	http.StatusNotFound:            ci.ErrNotFound,
	http.StatusUnauthorized:        ci.ErrUnauthenticated,
	http.StatusForbidden:           ci.ErrForbidden,
	http.StatusConflict:            ci.ErrConflict,
	http.StatusUnprocessableEntity: ci.ErrInvalid,
	http.StatusTooManyRequests:     ci.ErrRateLimited,
}

// detectionAPI calls the detection API route method
// /api/v1/orgs/{org}/integrations/buildkite/{rest} in process, as the
// signed-in user of r, and decodes its JSON answer into out.
func (s *Server) detectionAPI(r *http.Request, org, method, rest string, in, out any) error {
	path := "/api/v1/orgs/" + org + "/integrations/buildkite/" + rest
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, path, body)
	if err != nil {
		return fmt.Errorf("build in-process request %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// Only the session cookie: the API authenticates the same user.
	for _, c := range r.Cookies() {
		req.AddCookie(c)
	}
	if _, pattern := s.mux.Handler(req); !strings.HasSuffix(pattern, "/integrations/buildkite/"+rest) {
		return errNoDetection
	}
	res := &memoryResponse{header: http.Header{}}
	s.mux.ServeHTTP(res, req)
	if res.status >= 400 {
		var e apiError
		_ = json.Unmarshal(res.body.Bytes(), &e)
		kind, ok := errorKinds[res.status]
		if !ok {
			return fmt.Errorf("%s %s answered %d", method, path, res.status)
		}
		return &ci.Error{Kind: kind, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(res.body.Bytes(), out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return nil
}

// webhookStatus is the webhook endpoint as GET .../webhook describes it
// (webhook.Status); it never holds the secret.
type webhookStatus struct {
	Configured     bool       `json:"configured"`
	URL            string     `json:"url"`
	Mode           string     `json:"mode"`
	Weaker         bool       `json:"weaker"`
	Events         []string   `json:"events"`
	CreatedAt      *time.Time `json:"created_at"`
	RotatedAt      *time.Time `json:"rotated_at"`
	LastDeliveryAt *time.Time `json:"last_delivery_at"`
	Deliveries24h  int        `json:"deliveries_24h"`
	Unprocessed    int        `json:"unprocessed_24h"`
}

// webhookSetup is what POST .../webhook answers once (webhook.Setup).
type webhookSetup struct {
	URL          string   `json:"url"`
	Token        string   `json:"token"`
	Mode         string   `json:"mode"`
	Events       []string `json:"events"`
	Instructions string   `json:"instructions"`
}

// Weaker reports whether the endpoint authenticates by plain token.
func (w webhookSetup) Weaker() bool { return w.Mode == ci.WebhookModeToken }

// check is one diagnostic as GET .../diagnostics answers it (poller.Check).
type check struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Remedy  string `json:"remedy"`
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
func (c check) Name() string {
	if n, ok := checkNames[c.ID]; ok {
		return n
	}
	return c.ID
}

// View is the check's status in words, with an icon and a colour class.
func (c check) View() statusView {
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
	Webhook     webhookStatus
	Checks      []check
	// Counts of checks by status, for the panel's summary.
	Pass, Warn, Fail, NotChecked int
}

// detectionFor loads the webhook status and the diagnostics.
func (s *Server) detectionFor(r *http.Request, org string) (*detectionData, error) {
	d := &detectionData{}
	err := s.detectionAPI(r, org, http.MethodGet, "webhook", nil, &d.Webhook)
	if errors.Is(err, errNoDetection) {
		return &detectionData{Unavailable: true}, nil
	}
	if err != nil {
		return nil, err
	}
	var diag struct {
		Checks []check `json:"checks"`
	}
	if err := s.detectionAPI(r, org, http.MethodGet, "diagnostics", nil, &diag); err != nil {
		return nil, err
	}
	d.Checks = diag.Checks
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

// webhookStatusFor loads only the webhook status; ok is false when build
// detection is not running.
func (s *Server) webhookStatusFor(r *http.Request, org string) (st webhookStatus, ok bool, err error) {
	err = s.detectionAPI(r, org, http.MethodGet, "webhook", nil, &st)
	if errors.Is(err, errNoDetection) {
		return st, false, nil
	}
	return st, err == nil, err
}

// detectionRoutes registers the admin forms of the detection panels.
func (s *Server) detectionRoutes() {
	base := "/orgs/{org}/settings/integrations/buildkite/"
	s.mux.Handle("POST "+base+"webhook", s.orgUI(roleAdmin, s.webhookConfigure))
	s.mux.Handle("POST "+base+"poll", s.orgUI(roleAdmin, s.pollNow))
	s.mux.Handle("POST "+base+"backfill", s.orgUI(roleAdmin, s.backfill))
}

// webhookCreated is the page that shows a new webhook secret, once.
type webhookCreated struct {
	Setup   webhookSetup
	Rotated bool
}

// webhookConfigure creates or rotates the webhook endpoint and shows its
// URL and secret in the answer itself: never in a URL, a cookie or a later
// page.
func (s *Server) webhookConfigure(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	mode := r.PostFormValue("mode")
	if mode != ci.WebhookModeToken {
		mode = ci.WebhookModeSignature
	}
	before, _, err := s.webhookStatusFor(r, p.Org.Slug)
	if err != nil {
		return err
	}
	var setup webhookSetup
	err = s.detectionAPI(r, p.Org.Slug, http.MethodPost, "webhook", map[string]string{"mode": mode}, &setup)
	if err != nil {
		if !formError(err) {
			return err
		}
		_, _, msg := errorStatus(err)
		s.redirectFlash(w, r, s.buildkitePath(p), flashError, sentence(msg))
		return nil
	}
	pg.Title, pg.Section, pg.Sub = "Webhook endpoint", "settings", "integrations"
	pg.Data = webhookCreated{Setup: setup, Rotated: before.Configured}
	s.render(w, r, http.StatusCreated, "buildkite_webhook", *pg)
	return nil
}

// pollNow polls Buildkite once for the organization.
func (s *Server) pollNow(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	var out struct {
		Report struct {
			Calls    int  `json:"api_calls"`
			Builds   int  `json:"builds"`
			Complete bool `json:"complete"`
		} `json:"report"`
		Error string `json:"error"`
	}
	if err := s.detectionAPI(r, p.Org.Slug, http.MethodPost, "poll", nil, &out); err != nil {
		if !formError(err) {
			return err
		}
		_, _, msg := errorStatus(err)
		s.redirectFlash(w, r, s.buildkitePath(p), flashError, "Could not poll: "+sentence(msg))
		return nil
	}
	if out.Error != "" {
		s.redirectFlash(w, r, s.buildkitePath(p), flashError,
			fmt.Sprintf("The poll stopped after %s: %s", plural(out.Report.Calls, "API call"), sentence(out.Error)))
		return nil
	}
	msg := fmt.Sprintf("Polled Buildkite just now: %s seen with %s.", plural(out.Report.Builds, "build"), plural(out.Report.Calls, "API call"))
	if !out.Report.Complete {
		msg += " The request budget cut the run short; the next poll continues where it stopped."
	}
	s.redirectFlash(w, r, s.buildkitePath(p), flashOK, msg)
	return nil
}

// backfill starts a backfill of the last 7 days.
func (s *Server) backfill(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	err := s.detectionAPI(r, p.Org.Slug, http.MethodPost, "backfill", map[string]string{"since": "7d"}, nil)
	if err != nil {
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
