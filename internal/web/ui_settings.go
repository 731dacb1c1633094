package web

import (
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/store"
)

// settingsRoutes registers the organization settings pages: members, API
// tokens and the audit log. Every change is a POST that ends in a redirect
// with a flash message, or re-renders the form with what to fix.
func (s *Server) settingsRoutes() {
	s.mux.Handle("GET /orgs/{org}/settings", s.orgUI(roleMember, func(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
		http.Redirect(w, r, orgPath(p, "/settings/integrations"), http.StatusSeeOther)
		return nil
	}))
	s.mux.Handle("GET /orgs/{org}/settings/members", s.orgUI(roleMember, s.membersPage))
	s.mux.Handle("POST /orgs/{org}/settings/members", s.orgUI(roleAdmin, s.membersInvite))
	s.mux.Handle("POST /orgs/{org}/settings/members/{user_id}/role", s.orgUI(roleAdmin, s.membersRole))
	s.mux.Handle("POST /orgs/{org}/settings/members/{user_id}/remove", s.orgUI(roleAdmin, s.membersRemove))
	s.mux.Handle("GET /orgs/{org}/settings/tokens", s.orgUI(roleMember, s.tokensPage))
	s.mux.Handle("POST /orgs/{org}/settings/tokens", s.orgUI(roleMember, s.tokensCreate))
	s.mux.Handle("POST /orgs/{org}/settings/tokens/{id}/revoke", s.orgUI(roleMember, s.tokensRevoke))
	s.mux.Handle("GET /orgs/{org}/settings/audit", s.orgUI(roleAdmin, s.auditPage))
	s.inviteRoutes()
}

// orgPath is an absolute path inside the principal's organization.
func orgPath(p *principal, rest string) string { return "/orgs/" + p.Org.Slug + rest }

// formError reports whether err is one a form should show next to its
// fields (bad input, a conflict, a rate limit), rather than an error page.
func formError(err error) bool {
	return errors.Is(err, ci.ErrInvalid) || errors.Is(err, ci.ErrConflict) || errors.Is(err, ci.ErrRateLimited) || errors.Is(err, ci.ErrUnavailable)
}

// sentence makes a service message start with a capital (unless it starts
// with a name such as an email address) and end with a full stop.
func sentence(msg string) string {
	if msg == "" {
		return msg
	}
	first, _, _ := strings.Cut(msg, " ")
	if strings.Trim(first, "abcdefghijklmnopqrstuvwxyz") == "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:]
	}
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// inviteForm is the invite form, refilled after an error.
type inviteForm struct {
	Email string
	Role  ci.Role
}

// membersData is the members page. Invitations (pending ones) are listed
// for admins only. Created is set only on the response to the POST that
// created an invitation: the one time its link is shown.
type membersData struct {
	Members     []ci.Member
	Invitations []ci.Invitation
	Created     *createdInvitation
	SelfID      int64
	Form        inviteForm
}

func (s *Server) membersPage(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	return s.renderMembers(w, r, p, pg, http.StatusOK, membersData{Form: inviteForm{Role: ci.RoleMember}})
}

func (s *Server) renderMembers(w http.ResponseWriter, r *http.Request, p *principal, pg *page, status int, d membersData) error {
	ms, err := s.db.ListMembers(r.Context(), p.Org.ID)
	if err != nil {
		return err
	}
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].User.Email < ms[j].User.Email })
	d.Members, d.SelfID = ms, p.User.ID
	if p.Role == ci.RoleAdmin {
		if d.Invitations, err = s.db.ListInvitations(r.Context(), p.Org.ID); err != nil {
			return err
		}
	}
	pg.Title, pg.Section, pg.Sub = "Members", "settings", "members"
	pg.Data = d
	s.render(w, r, status, "members", *pg)
	return nil
}

// membersInvite answers with the page itself, not a redirect: the new
// invitation's link is shown once, in this response only, and never put in
// a URL or cookie.
func (s *Server) membersInvite(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	form := inviteForm{Email: strings.TrimSpace(r.PostFormValue("email")), Role: ci.Role(r.PostFormValue("role"))}
	c, err := s.invite(r, p, form.Email, form.Role)
	if err != nil {
		if !formError(err) {
			return err
		}
		_, _, msg := errorStatus(err)
		pg.Error = sentence(msg)
		return s.renderMembers(w, r, p, pg, http.StatusUnprocessableEntity, membersData{Form: form})
	}
	return s.renderMembers(w, r, p, pg, http.StatusCreated, membersData{Created: &c, Form: inviteForm{Role: ci.RoleMember}})
}

func roleWords(r ci.Role) string {
	if r == ci.RoleAdmin {
		return "an admin"
	}
	return "a member"
}

// memberName finds a member's email for messages; it falls back to the id.
// Only members of p's organization are named: a user id from another
// organization gives the fallback, never that user's email.
func (s *Server) memberName(r *http.Request, p *principal, id int64) string {
	if _, err := s.db.Membership(r.Context(), p.Org.ID, id); err == nil {
		if u, err := s.db.UserByID(r.Context(), id); err == nil {
			return u.Email
		}
	}
	return "member " + strconv.FormatInt(id, 10)
}

func (s *Server) membersRole(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	id, err := pathID(r, "user_id")
	if err != nil {
		return err
	}
	role := ci.Role(r.PostFormValue("role"))
	if err := s.setRole(r, p, id, role); err != nil {
		if !formError(err) {
			return err
		}
		_, _, msg := errorStatus(err)
		s.redirectFlash(w, r, orgPath(p, "/settings/members"), flashError, sentence(msg))
		return nil
	}
	s.redirectFlash(w, r, orgPath(p, "/settings/members"), flashOK, s.memberName(r, p, id)+" is now "+roleWords(role)+".")
	return nil
}

func (s *Server) membersRemove(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	id, err := pathID(r, "user_id")
	if err != nil {
		return err
	}
	name := s.memberName(r, p, id)
	if err := s.removeMemberID(r, p, id); err != nil {
		if !formError(err) {
			return err
		}
		_, _, msg := errorStatus(err)
		s.redirectFlash(w, r, orgPath(p, "/settings/members"), flashError, sentence(msg))
		return nil
	}
	s.redirectFlash(w, r, orgPath(p, "/settings/members"), flashOK, "Removed "+name+" from "+p.Org.Name+".")
	return nil
}

// tokensData is the API tokens page. Created is set only on the response
// to the POST that created a token: the one time its secret is shown.
type tokensData struct {
	Tokens  []ci.APIToken
	Created *createdToken
	Name    string
}

func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	return s.renderTokens(w, r, p, pg, http.StatusOK, tokensData{})
}

func (s *Server) renderTokens(w http.ResponseWriter, r *http.Request, p *principal, pg *page, status int, d tokensData) error {
	toks, err := s.db.ListAPITokens(r.Context(), p.User.ID)
	if err != nil {
		return err
	}
	d.Tokens = toks
	pg.Title, pg.Section, pg.Sub = "API tokens", "settings", "tokens"
	pg.Data = d
	s.render(w, r, status, "tokens", *pg)
	return nil
}

// tokensCreate answers with the page itself, not a redirect: the new token
// is shown once, in this response only, and never put in a URL or cookie.
func (s *Server) tokensCreate(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	name := r.PostFormValue("name")
	t, err := s.issueToken(r, p.User, name)
	if err != nil {
		if !formError(err) {
			return err
		}
		_, _, msg := errorStatus(err)
		pg.Error = sentence(msg)
		return s.renderTokens(w, r, p, pg, http.StatusUnprocessableEntity, tokensData{Name: name})
	}
	return s.renderTokens(w, r, p, pg, http.StatusCreated, tokensData{Created: &t})
}

func (s *Server) tokensRevoke(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	t, err := s.db.RevokeAPIToken(r.Context(), p.User.ID, id)
	if err != nil {
		if errors.Is(err, ci.ErrNotFound) {
			return ci.Errorf(ci.ErrNotFound, "not_found", "API token not found")
		}
		return err
	}
	s.auditUser(r, p.User, "api_token.revoke", "api_token:"+strconv.FormatInt(id, 10), ci.OutcomeSuccess, map[string]string{"name": t.Name})
	s.redirectFlash(w, r, orgPath(p, "/settings/tokens"), flashOK, "Revoked the API token “"+t.Name+"”. Programs using it can no longer sign in.")
	return nil
}

// auditPageSize is how many events one audit log page shows.
const auditPageSize = 50

// auditData is one page of the audit log, newest first.
type auditData struct {
	Events []ci.AuditEvent
	Older  int64 // the before= value of the next page; 0 when this is the last
	Paged  bool  // this is not the newest page
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	f := store.AuditFilter{OrgID: p.Org.ID, Limit: auditPageSize + 1}
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return ci.Errorf(ci.ErrInvalid, "invalid_before", "this audit log page does not exist")
		}
		f.BeforeID = n
	}
	evs, err := s.db.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	d := auditData{Events: evs, Paged: f.BeforeID > 0}
	if len(evs) > auditPageSize {
		d.Events = evs[:auditPageSize]
		d.Older = d.Events[auditPageSize-1].ID
	}
	pg.Title, pg.Section, pg.Sub = "Audit log", "settings", "audit"
	pg.Data = d
	s.render(w, r, http.StatusOK, "audit", *pg)
	return nil
}
