package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kitewatch/kitewatch/internal/auth"
	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/store"
)

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	orgs, err := s.db.ListUserOrgs(r.Context(), p.User.ID)
	if err != nil {
		return err
	}
	if orgs == nil {
		orgs = []ci.OrgRole{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": p.User, "organizations": orgs})
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p *principal) error {
	toks, err := s.db.ListAPITokens(r.Context(), p.User.ID)
	if err != nil {
		return err
	}
	if toks == nil {
		toks = []ci.APIToken{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": toks})
	return nil
}

// createdToken is the one response that carries a token's secret.
type createdToken struct {
	ci.APIToken
	Token string `json:"token"`
}

func validName(name string) error {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return ci.Errorf(ci.ErrInvalid, "invalid_name", "name must be 1 to 100 characters")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return ci.Errorf(ci.ErrInvalid, "invalid_name", "name must not contain control characters")
		}
	}
	return nil
}

// issueToken creates a personal API token for user and records it.
func (s *Server) issueToken(r *http.Request, user ci.User, name string) (createdToken, error) {
	if err := validName(name); err != nil {
		return createdToken{}, err
	}
	plain, hash, err := auth.NewToken(auth.PrefixAPIToken)
	if err != nil {
		return createdToken{}, fmt.Errorf("generate API token: %w", err)
	}
	t, err := s.db.CreateAPIToken(r.Context(), ci.APIToken{UserID: user.ID, Name: strings.TrimSpace(name), Hint: auth.TokenHint(plain), TokenHash: hash})
	if err != nil {
		return createdToken{}, err
	}
	s.auditUser(r, user, "api_token.create", "api_token:"+strconv.FormatInt(t.ID, 10), ci.OutcomeSuccess, map[string]string{"name": t.Name})
	return createdToken{APIToken: t, Token: plain}, nil
}

// auditUser records a user-level event in each of the user's organizations,
// since the audit log is kept per organization.
func (s *Server) auditUser(r *http.Request, user ci.User, action, target, outcome string, details map[string]string) {
	orgs, err := s.db.ListUserOrgs(r.Context(), user.ID)
	if err != nil {
		s.logger.ErrorContext(r.Context(), "audit event not recorded", "action", action, "error", err)
		return
	}
	uid := user.ID
	for _, o := range orgs {
		id := o.Org.ID
		s.audit(r, ci.AuditEvent{OrgID: &id, ActorID: &uid, Actor: user.Email, Action: action, Target: target, Outcome: outcome, Details: details})
	}
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	t, err := s.issueToken(r, p.User, in.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, ci.Errorf(ci.ErrNotFound, "not_found", "not found")
	}
	return id, nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, p *principal) error {
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
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) getOrg(w http.ResponseWriter, r *http.Request, p *principal) error {
	writeJSON(w, http.StatusOK, map[string]any{"organization": p.Org, "role": p.Role})
	return nil
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request, p *principal) error {
	ms, err := s.db.ListMembers(r.Context(), p.Org.ID)
	if err != nil {
		return err
	}
	if ms == nil {
		ms = []ci.Member{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": ms})
	return nil
}

// addMember answers the old POST /members, which let an admin choose a new
// person's password and add existing accounts without their consent: 410,
// pointing at invitations. Nothing is read or changed.
func (s *Server) addMember(w http.ResponseWriter, r *http.Request, p *principal) error {
	var body apiError
	body.Error.Code = "use_invitations"
	body.Error.Message = "members join by invitation: POST /api/v1/orgs/" + p.Org.Slug +
		"/invitations with {\"email\", \"role\"} and share the link it returns with the person privately"
	writeJSON(w, http.StatusGone, body)
	return nil
}

func (s *Server) setRole(r *http.Request, p *principal, userID int64, role ci.Role) error {
	if !role.Valid() {
		return ci.Errorf(ci.ErrInvalid, "invalid_role", "role must be admin or member")
	}
	revoked, err := s.db.SetMemberRole(r.Context(), p.Org.ID, userID, role)
	if err != nil {
		if errors.Is(err, ci.ErrNotFound) {
			return ci.Errorf(ci.ErrNotFound, "not_found", "member not found")
		}
		return err
	}
	details := map[string]string{"role": string(role)}
	if revoked > 0 {
		details["invitations_revoked"] = strconv.FormatInt(revoked, 10)
	}
	s.audit(r, ci.AuditEvent{OrgID: &p.Org.ID, ActorID: p.actorID(), Actor: p.User.Email, Action: "member.role",
		Target: "user:" + strconv.FormatInt(userID, 10), Outcome: ci.OutcomeSuccess, Details: details})
	return nil
}

func (s *Server) updateMember(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "user_id")
	if err != nil {
		return err
	}
	var in struct {
		Role ci.Role `json:"role"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := s.setRole(r, p, id, in.Role); err != nil {
		return err
	}
	m, err := s.db.Membership(r.Context(), p.Org.ID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) removeMemberID(r *http.Request, p *principal, id int64) error {
	revoked, err := s.db.RemoveMember(r.Context(), p.Org.ID, id)
	if err != nil {
		if errors.Is(err, ci.ErrNotFound) {
			return ci.Errorf(ci.ErrNotFound, "not_found", "member not found")
		}
		return err
	}
	var details map[string]string
	if revoked > 0 {
		details = map[string]string{"invitations_revoked": strconv.FormatInt(revoked, 10)}
	}
	s.audit(r, ci.AuditEvent{OrgID: &p.Org.ID, ActorID: p.actorID(), Actor: p.User.Email, Action: "member.remove",
		Target: "user:" + strconv.FormatInt(id, 10), Outcome: ci.OutcomeSuccess, Details: details})
	return nil
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "user_id")
	if err != nil {
		return err
	}
	if err := s.removeMemberID(r, p, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, p *principal) error {
	f := store.AuditFilter{OrgID: p.Org.ID, Action: r.URL.Query().Get("action")}
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return ci.Errorf(ci.ErrInvalid, "invalid_before", "before must be an event id")
		}
		f.BeforeID = n
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return ci.Errorf(ci.ErrInvalid, "invalid_limit", "limit must be between 1 and 500")
		}
		f.Limit = n
	}
	evs, err := s.db.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []ci.AuditEvent{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs})
	return nil
}
