package web

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk"
	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/integration"
)

// buildkiteTokenPage is where Buildkite users create API access tokens. It
// is only ever a link for the user's browser: kitewatch never calls it.
const buildkiteTokenPage = "https://buildkite.com/user/api-access-tokens"

// buildkiteRoutes registers Settings → Integrations and the Buildkite
// integration page. Everyone in the organization sees the status; only
// admins get the forms, and only admins' POSTs are accepted.
func (s *Server) buildkiteRoutes() {
	s.mux.Handle("GET /orgs/{org}/settings/integrations", s.orgUI(roleMember, s.integrationsPage))
	s.mux.Handle("GET /orgs/{org}/settings/integrations/buildkite", s.orgUI(roleMember, s.buildkitePage))
	s.mux.Handle("POST /orgs/{org}/settings/integrations/buildkite/connect", s.orgUI(roleAdmin, s.buildkiteConnect))
	s.mux.Handle("POST /orgs/{org}/settings/integrations/buildkite/verify", s.orgUI(roleAdmin, s.buildkiteVerify))
	s.mux.Handle("POST /orgs/{org}/settings/integrations/buildkite/rotate", s.orgUI(roleAdmin, s.buildkiteRotate))
	s.mux.Handle("GET /orgs/{org}/settings/integrations/buildkite/disconnect", s.orgUI(roleAdmin, s.buildkiteDisconnectForm))
	s.mux.Handle("POST /orgs/{org}/settings/integrations/buildkite/disconnect", s.orgUI(roleAdmin, s.buildkiteDisconnect))
	// The form actions answer a GET (a bookmarked or retyped result URL)
	// with the Buildkite page rather than "405 Method Not Allowed".
	s.mux.Handle("GET /orgs/{org}/settings/integrations/buildkite/{action}", s.orgUI(roleMember,
		func(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
			switch r.PathValue("action") {
			case "connect", "verify", "rotate", "webhook", "poll", "backfill":
				http.Redirect(w, r, s.buildkitePath(p), http.StatusSeeOther)
				return nil
			}
			return ci.Errorf(ci.ErrNotFound, "not_found", "there is no page at this address")
		}))
	s.detectionRoutes()
}

// statusView is how a status is shown: words and an icon, never colour
// alone.
type statusView struct {
	Label string
	Icon  string
	Class string // badge colour class: ok, warn, err, none
}

var statusViews = map[string]statusView{
	ci.StatusNotConnected:   {"Not connected", "○", "none"},
	ci.StatusConnected:      {"Connected", "✓", "ok"},
	ci.StatusNeedsAttention: {"Needs attention", "!", "warn"},
	ci.StatusDisconnected:   {"Disconnected", "⊘", "none"},
}

func viewOf(status string) statusView {
	if v, ok := statusViews[status]; ok {
		return v
	}
	return statusView{Label: status, Icon: "?", Class: "none"}
}

// scopeRow is one line of the scope checklist. State is "ok", "missing",
// or "" when the token's scopes are not known (nothing connected yet, or
// the token could not be read).
type scopeRow struct {
	Name    string
	Purpose string
	State   string
}

func scopeRows(facts *bk.TokenFacts) []scopeRow {
	rows := make([]scopeRow, 0, len(bk.RequiredScopes))
	for _, sc := range bk.RequiredScopes {
		row := scopeRow{Name: sc.Name, Purpose: sc.Purpose}
		if facts != nil && facts.Scopes != nil {
			row.State = "ok"
			if slices.Contains(facts.MissingScopes, sc.Name) || !slices.Contains(facts.Scopes, sc.Name) {
				row.State = "missing"
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// attempt is a failed connect or rotate: nothing was stored, and the page
// shows what Buildkite said. It never holds the token.
type attempt struct {
	Action string // "connect" or "rotate"
	Report bk.Report
}

// kind sorts a failed attempt for its heading: "choose_org" when the only
// thing missing is a choice of organization, "unreachable" when Buildkite
// could not be asked, "rejected" otherwise.
func (a attempt) kind() string {
	var codes []string
	for _, p := range a.Report.Problems {
		if p.Severity != bk.SeverityWarning {
			codes = append(codes, p.Code)
		}
	}
	switch {
	case len(codes) == 1 && codes[0] == bk.CodeOrganizationRequired:
		return "choose_org"
	case slices.Contains(codes, bk.CodeTokenFormatInvalid) || slices.Contains(codes, bk.CodeWrongTokenType):
		return "not_sent"
	case slices.Contains(codes, bk.CodeBuildkiteUnreachable) || slices.Contains(codes, bk.CodeRateLimited):
		return "unreachable"
	}
	return "rejected"
}

// Heading is the title of the result.
func (a attempt) Heading() string {
	switch a.kind() {
	case "choose_org":
		return "One more step: choose the Buildkite organization"
	case "unreachable":
		return "kitewatch could not check this token with Buildkite"
	case "not_sent":
		return "This is not a Buildkite API access token"
	}
	return "Buildkite did not accept this token"
}

// NotSent reports whether kitewatch refused the token before asking
// Buildkite (not a token, or another kind of Buildkite token).
func (a attempt) NotSent() bool { return a.kind() == "not_sent" }

// ChooseOrg reports whether the only problem is a missing choice of
// organization.
func (a attempt) ChooseOrg() bool { return a.kind() == "choose_org" }

// buildkiteData is everything the Buildkite page shows.
type buildkiteData struct {
	Status    integration.Status
	View      statusView
	Attempt   *attempt
	Scopes    []scopeRow
	ScopesFor string // whose scopes the checklist shows: "connected", "attempt" or ""
	Errors    []bk.Problem
	Warnings  []bk.Problem
	// Organizations are the Buildkite organizations the last attempted token
	// reaches, when it reaches more than one and one must be chosen.
	Organizations []string
	OrgInput      string // the Buildkite organization field, refilled after a failure
	// AttemptGone is set when the page was asked for an attempt's result
	// that is no longer kept (or is another session's).
	AttemptGone bool
	FormError   string // a form problem that is not a verification result
	Expiry      expiry
	TokenPage   string
	// Detection is the webhook and diagnostics panels, loaded on the
	// Buildkite page only.
	Detection *detectionData
}

// Connected reports whether a token is stored (connected or needing
// attention): the page then offers verify, rotate and disconnect.
func (d buildkiteData) Connected() bool {
	return d.Status.Status == ci.StatusConnected || d.Status.Status == ci.StatusNeedsAttention
}

// GrantedCount is how many required scopes the checklist shows as granted.
func (d buildkiteData) GrantedCount() int {
	n := 0
	for _, r := range d.Scopes {
		if r.State == "ok" {
			n++
		}
	}
	return n
}

// expiry describes when the shown token expires.
type expiry struct {
	Known   bool
	At      time.Time
	In      string // "in 89 days" or "2 days ago"
	Expired bool
	Soon    bool // within 14 days
}

func expiryOf(facts *bk.TokenFacts, now time.Time) expiry {
	if facts == nil || facts.ExpiresAt == nil {
		return expiry{}
	}
	at := *facts.ExpiresAt
	return expiry{Known: true, At: at, In: timeagoAt(at, now), Expired: !at.After(now), Soon: at.Sub(now) < 14*24*time.Hour}
}

// timeagoAt is timeago against a given clock (the store's, so tests with a
// fixed clock read consistently).
func timeagoAt(t, now time.Time) string {
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = "less than a minute"
	case d < time.Hour:
		s = plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		s = plural(int(d/time.Hour), "hour")
	default:
		s = plural(int(d/(24*time.Hour)), "day")
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func splitProblems(ps []bk.Problem) (errs, warns []bk.Problem) {
	for _, p := range ps {
		if p.Severity == bk.SeverityWarning {
			warns = append(warns, p)
		} else {
			errs = append(errs, p)
		}
	}
	return errs, warns
}

// problemOrgs lists the organizations an organization_required or
// no_organization_access problem names.
func problemOrgs(r bk.Report) []string {
	var out []string
	if p, ok := r.Problem(bk.CodeOrganizationRequired); ok {
		switch v := p.Data["organizations"].(type) {
		case []string:
			out = append(out, v...)
		case []any:
			for _, o := range v {
				if s, ok := o.(string); ok {
					out = append(out, s)
				}
			}
		}
		if len(out) == 0 {
			for _, o := range r.Organizations {
				out = append(out, o.Slug)
			}
		}
	}
	return out
}

func (s *Server) buildkiteData(r *http.Request, p *principal) (buildkiteData, error) {
	st, err := s.Integrations.Status(r.Context(), *p.Org)
	if err != nil {
		return buildkiteData{}, err
	}
	d := buildkiteData{Status: st, View: viewOf(st.Status), TokenPage: buildkiteTokenPage}
	if st.Status == ci.StatusConnected || st.Status == ci.StatusNeedsAttention {
		d.Scopes, d.ScopesFor = scopeRows(st.Token), "connected"
		d.Errors, d.Warnings = splitProblems(st.Problems)
		d.Expiry = expiryOf(st.Token, s.db.Now())
	} else {
		d.Scopes = scopeRows(nil)
	}
	return d, nil
}

func (s *Server) integrationsPage(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	d, err := s.buildkiteData(r, p)
	if err != nil {
		return err
	}
	pg.Title, pg.Section, pg.Sub = "Integrations", "settings", "integrations"
	pg.Data = d
	s.render(w, r, http.StatusOK, "integrations", *pg)
	return nil
}

func (s *Server) buildkitePage(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	d, err := s.buildkiteData(r, p)
	if err != nil {
		return err
	}
	// The page a failed connect or rotate redirects to: its result again,
	// as often as the page is reloaded, while the cookie lasts.
	if id := r.URL.Query().Get("attempt"); id != "" && p.Role == ci.RoleAdmin {
		if a, ok := s.loadAttempt(r, p, id); ok {
			d.withAttempt(a)
		} else {
			d.AttemptGone = true
		}
	}
	return s.renderBuildkite(w, r, pg, http.StatusOK, d)
}

// withAttempt shows a failed attempt's result on the page.
func (d *buildkiteData) withAttempt(a savedAttempt) {
	d.Attempt = &attempt{Action: a.Action, Report: a.Report}
	d.Errors, d.Warnings = splitProblems(a.Report.Problems)
	d.Organizations = a.Orgs
	d.OrgInput = a.OrgInput
	d.Scopes, d.ScopesFor = scopeRows(&a.Report.Token), "attempt"
}

func (s *Server) renderBuildkite(w http.ResponseWriter, r *http.Request, pg *page, status int, d buildkiteData) error {
	if d.Connected() && pg.Org != nil {
		det, err := s.detectionFor(r.Context(), *pg.Org)
		if err != nil {
			return err
		}
		d.Detection = det
	}
	pg.Title, pg.Section, pg.Sub = "Buildkite integration", "settings", "integrations"
	pg.Data = d
	s.render(w, r, status, "buildkite", *pg)
	return nil
}

// buildkiteFailed re-renders the Buildkite page after a connect or rotate
// that did not go through: a failed verification shows the report, a form
// problem (no token, too many attempts) its message. The token is not
// kept: the form comes back empty.
func (s *Server) buildkiteFailed(w http.ResponseWriter, r *http.Request, p *principal, pg *page, action, orgInput string, err error) error {
	var ve *integration.VerificationError
	if !errors.As(err, &ve) && !formError(err) {
		return err
	}
	d, derr := s.buildkiteData(r, p)
	if derr != nil {
		return derr
	}
	d.OrgInput = orgInput
	status := http.StatusUnprocessableEntity
	if ve != nil {
		a := savedAttempt{Action: action, OrgInput: orgInput, Orgs: problemOrgs(ve.Report), Report: ve.Report}
		if id, ok := s.saveAttempt(w, r, p, a); ok {
			http.Redirect(w, r, s.buildkitePath(p)+"?attempt="+id, http.StatusSeeOther)
			return nil
		}
		d.withAttempt(a)
	} else {
		st, _, msg := errorStatus(err)
		status, d.FormError = st, sentence(msg)
	}
	return s.renderBuildkite(w, r, pg, status, d)
}

func (s *Server) buildkitePath(p *principal) string {
	return orgPath(p, "/settings/integrations/buildkite")
}

func (s *Server) buildkiteConnect(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	org := strings.TrimSpace(r.PostFormValue("organization"))
	tok, err := readToken(r.PostFormValue("token"))
	if err != nil {
		return s.buildkiteFailed(w, r, p, pg, "connect", org, err)
	}
	st, _, err := s.Integrations.Connect(r.Context(), *p.Org, p.actor(r), tok, org)
	if err != nil {
		return s.buildkiteFailed(w, r, p, pg, "connect", org, err)
	}
	s.clearAttempt(w, r, p)
	msg := "Buildkite is connected"
	if st.Organization != nil {
		msg += " to " + orgLabel(st.Organization)
	}
	s.redirectFlash(w, r, s.buildkitePath(p), flashOK, msg+": the token passed every check.")
	return nil
}

func orgLabel(o *bk.OrgRef) string {
	if o.Name != "" && o.Name != o.Slug {
		return fmt.Sprintf("%s (%s)", o.Name, o.Slug)
	}
	return o.Slug
}

func (s *Server) buildkiteVerify(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	st, err := s.Integrations.Recheck(r.Context(), *p.Org, p.actor(r), integration.TriggerManual)
	if err != nil {
		if !formError(err) {
			return err
		}
		_, _, msg := errorStatus(err)
		s.redirectFlash(w, r, s.buildkitePath(p), flashError, sentence(msg))
		return nil
	}
	if st.LastResult == "ok" {
		s.redirectFlash(w, r, s.buildkitePath(p), flashOK, "Verified just now: the token passed every check.")
		return nil
	}
	s.redirectFlash(w, r, s.buildkitePath(p), flashError, "Verified just now: the token has problems. See what to fix below.")
	return nil
}

func (s *Server) buildkiteRotate(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	revoke := r.PostFormValue("revoke_previous") != ""
	tok, err := readToken(r.PostFormValue("token"))
	if err != nil {
		return s.buildkiteFailed(w, r, p, pg, "rotate", "", err)
	}
	_, rep, err := s.Integrations.Rotate(r.Context(), *p.Org, p.actor(r), tok, revoke)
	if err != nil {
		return s.buildkiteFailed(w, r, p, pg, "rotate", "", err)
	}
	s.clearAttempt(w, r, p)
	msg := "Rotated: kitewatch now uses the new token."
	switch {
	case !revoke:
		msg += " The previous token still works at Buildkite until you revoke it there."
	case slices.Contains(rep.Codes(), "previous_token_not_revoked"):
		return s.flashPreviousNotRevoked(w, r, p, msg)
	default:
		msg += " The previous token was revoked at Buildkite."
	}
	s.redirectFlash(w, r, s.buildkitePath(p), flashOK, msg)
	return nil
}

func (s *Server) flashPreviousNotRevoked(w http.ResponseWriter, r *http.Request, p *principal, msg string) error {
	s.redirectFlash(w, r, s.buildkitePath(p), flashError, msg+
		" Revoking the previous token at Buildkite failed: revoke it on Buildkite's API Access Tokens page.")
	return nil
}

// disconnectData is the disconnect confirmation page.
type disconnectData struct {
	Status    integration.Status
	FormError string
	TokenPage string
}

func (s *Server) buildkiteDisconnectForm(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	return s.renderDisconnect(w, r, p, pg, http.StatusOK, "")
}

func (s *Server) renderDisconnect(w http.ResponseWriter, r *http.Request, p *principal, pg *page, status int, formErr string) error {
	st, err := s.Integrations.Status(r.Context(), *p.Org)
	if err != nil {
		return err
	}
	if st.Status != ci.StatusConnected && st.Status != ci.StatusNeedsAttention {
		s.redirectFlash(w, r, s.buildkitePath(p), flashError, "Buildkite is not connected, so there is nothing to disconnect.")
		return nil
	}
	pg.Title, pg.Section, pg.Sub = "Disconnect Buildkite", "settings", "integrations"
	pg.Data = disconnectData{Status: st, FormError: formErr, TokenPage: buildkiteTokenPage}
	s.render(w, r, status, "buildkite_disconnect", *pg)
	return nil
}

func (s *Server) buildkiteDisconnect(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	revoke := r.PostFormValue("revoke") != ""
	if _, err := s.Integrations.Disconnect(r.Context(), *p.Org, p.actor(r), revoke); err != nil {
		if !formError(err) {
			return err
		}
		_, _, msg := errorStatus(err)
		return s.renderDisconnect(w, r, p, pg, http.StatusConflict, sentence(msg))
	}
	msg := "Buildkite is disconnected and kitewatch erased its copy of the token."
	if revoke {
		msg = "Buildkite is disconnected: the token was revoked at Buildkite and kitewatch erased its copy."
	}
	s.redirectFlash(w, r, s.buildkitePath(p), flashOK, msg)
	return nil
}
