package web

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kitewatch/kitewatch/internal/auth"
	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/store"
)

// Invitations are how people join an organization: an admin invites an
// email with a role and shares the one-time link privately; the person
// opens it and either creates their account (name and password of their
// own choosing) or, having one, signs in and accepts. An admin never sets
// anyone's password and never adds an existing account without its owner's
// consent, and creating an invitation answers the same whether or not the
// email has an account, so it tells nothing about other organizations.

// invitePrefix starts every invitation link's secret ("kwinv_..."), which
// the access log and the redacting logger recognise as a token.
const invitePrefix = "kwinv"

// inviteTTL is how long an invitation link works.
const inviteTTL = 7 * 24 * time.Hour

// invitePath is the path of an invitation link.
func invitePath(token string) string { return "/invite/" + token }

// createdInvitation is the one response that carries an invitation's link.
type createdInvitation struct {
	Invitation ci.Invitation `json:"invitation"`
	URL        string        `json:"url"`
}

// inviteRoutes registers the invitation API and the pages the link opens.
func (s *Server) inviteRoutes() {
	s.mux.Handle("GET /api/v1/orgs/{org}/invitations", s.orgAPI(roleAdmin, s.listInvitations))
	s.mux.Handle("POST /api/v1/orgs/{org}/invitations", s.orgAPI(roleAdmin, s.createInvitation))
	s.mux.Handle("DELETE /api/v1/orgs/{org}/invitations/{id}", s.orgAPI(roleAdmin, s.revokeInvitation))
	s.mux.Handle("POST /orgs/{org}/settings/invitations/{id}/revoke", s.orgUI(roleAdmin, s.invitationsRevoke))
	s.mux.HandleFunc("GET /invite/{token}", originReferrer(s.invitePage))
	s.mux.HandleFunc("POST /invite/{token}", originReferrer(s.inviteSubmit))
}

// originReferrer serves a page whose URL holds a secret (an invitation or
// setup link, or a sign-in page whose ?next= is one) with Referrer-Policy:
// strict-origin instead of the site-wide same-origin: the page's own
// requests (style sheets, script, the sign-in link, form posts) then carry
// a Referer of the site's origin only, not the link, for a proxy's access
// log to keep. Not no-referrer: with it, browsers without Sec-Fetch-Site
// send "Origin: null" on the page's form posts, which the cross-origin
// protection refuses.
func originReferrer(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Referrer-Policy", "strict-origin")
		h(w, r)
	}
}

// invite creates (or replaces) the invitation of email to p's organization
// and returns it with its link. Whether email has an account anywhere is
// not looked at: the answer is the same either way. Only membership of p's
// own organization, which its admins can see anyway, is refused.
func (s *Server) invite(r *http.Request, p *principal, email string, role ci.Role) (createdInvitation, error) {
	ctx := r.Context()
	email = strings.ToLower(strings.TrimSpace(email))
	if err := ValidateEmail(email); err != nil {
		return createdInvitation{}, err
	}
	if role == "" {
		role = ci.RoleMember
	}
	if !role.Valid() {
		return createdInvitation{}, ci.Errorf(ci.ErrInvalid, "invalid_role", "role must be admin or member")
	}
	members, err := s.db.ListMembers(ctx, p.Org.ID)
	if err != nil {
		return createdInvitation{}, err
	}
	for _, m := range members {
		if m.User.Email == email {
			return createdInvitation{}, ci.Errorf(ci.ErrConflict, "already_member", "%s is already a member", email)
		}
	}
	plain, hash, err := auth.NewToken(invitePrefix)
	if err != nil {
		return createdInvitation{}, fmt.Errorf("generate invitation link: %w", err)
	}
	inv, replaced, err := s.db.CreateInvitation(ctx, ci.Invitation{OrgID: p.Org.ID, Email: email, Role: role, TokenHash: hash,
		InvitedBy: p.actorID(), ExpiresAt: s.db.Now().Add(inviteTTL)})
	if err != nil {
		return createdInvitation{}, err
	}
	s.audit(r, ci.AuditEvent{OrgID: &p.Org.ID, ActorID: p.actorID(), Actor: p.User.Email, Action: "member.invite",
		Target: "user:" + email, Outcome: ci.OutcomeSuccess,
		Details: map[string]string{"role": string(role), "invitation": strconv.FormatInt(inv.ID, 10), "replaced": strconv.FormatBool(replaced)}})
	return createdInvitation{Invitation: inv, URL: strings.TrimRight(s.PublicURL, "/") + invitePath(plain)}, nil
}

// revokeInvitationID revokes one of p's organization's pending invitations.
func (s *Server) revokeInvitationID(r *http.Request, p *principal, id int64) (ci.Invitation, error) {
	inv, err := s.db.RevokeInvitation(r.Context(), p.Org.ID, id)
	if err != nil {
		if errors.Is(err, ci.ErrNotFound) {
			return ci.Invitation{}, ci.Errorf(ci.ErrNotFound, "not_found", "invitation not found: it was accepted, revoked or replaced, or it expired")
		}
		return ci.Invitation{}, err
	}
	s.audit(r, ci.AuditEvent{OrgID: &p.Org.ID, ActorID: p.actorID(), Actor: p.User.Email, Action: "member.invite_revoke",
		Target: "user:" + inv.Email, Outcome: ci.OutcomeSuccess,
		Details: map[string]string{"role": string(inv.Role), "invitation": strconv.FormatInt(inv.ID, 10)}})
	return inv, nil
}

func (s *Server) createInvitation(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Email string  `json:"email"`
		Role  ci.Role `json:"role"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	c, err := s.invite(r, p, in.Email, in.Role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Server) listInvitations(w http.ResponseWriter, r *http.Request, p *principal) error {
	invs, err := s.db.ListInvitations(r.Context(), p.Org.ID)
	if err != nil {
		return err
	}
	if invs == nil {
		invs = []ci.Invitation{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"invitations": invs})
	return nil
}

func (s *Server) revokeInvitation(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if _, err := s.revokeInvitationID(r, p, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) invitationsRevoke(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	inv, err := s.revokeInvitationID(r, p, id)
	if err != nil {
		return err // another organization's, used or unknown: 404, like members
	}
	s.redirectFlash(w, r, orgPath(p, "/settings/members"), flashOK, "Revoked the invitation of "+inv.Email+": its link no longer works.")
	return nil
}

// inviteData is the page an invitation link opens.
type inviteData struct {
	Org  ci.Org
	Role ci.Role
	// Email is the invited address; shown only to its invitee (the link
	// holder) and masked for someone signed in as another account.
	Email string
	// Mode is "new" (create an account), "signin" (the email has an
	// account: sign in first), "accept" (signed in as the invitee) or
	// "mismatch" (signed in as someone else).
	Mode   string
	Masked string
	SignIn string // the sign-in URL that comes back here
	Name   string // refilled after an error (never the password)
}

// maskEmail shows the first character of the local part and the domain:
// "b…@acme.test".
func maskEmail(email string) string {
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" {
		return "…"
	}
	r := []rune(local)
	return string(r[0]) + "…@" + domain
}

// inviteInvalidMsg is the one answer for unknown, expired, used, revoked and
// replaced links: which it is stays unsaid.
const inviteInvalidMsg = "This invitation link is not valid any more: it expired, was already used, or was replaced or revoked. " +
	"Ask an admin of the organization for a new one."

// renderInviteInvalid is the page of a link that does not work.
func (s *Server) renderInviteInvalid(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusNotFound, "error", page{Title: "Invitation link not valid", Error: inviteInvalidMsg, Data: 404})
}

// loadInvite finds the pending invitation of the link, throttling failures
// per client IP like sign-in: unknown links count as failed attempts, so
// guessing is slowed down on top of the links' 256 random bits. It writes
// the answer itself and returns ok=false when the request ends here.
func (s *Server) loadInvite(w http.ResponseWriter, r *http.Request) (inv ci.Invitation, org ci.Org, ok bool) {
	ip := clientIP(r)
	if wait := s.signins.Check(ip, ""); wait > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		s.render(w, r, http.StatusTooManyRequests, "error", page{Title: errorTitles[http.StatusTooManyRequests],
			Error: fmt.Sprintf("Too many attempts with links that do not work. Try again in %s.", wait.Round(time.Second)+time.Second), Data: 429})
		return inv, org, false
	}
	tok := r.PathValue("token")
	var err error
	if auth.LooksLikeToken(invitePrefix, tok) {
		inv, err = s.db.InvitationByHash(r.Context(), auth.HashToken(tok))
		if err == nil {
			org, err = s.db.OrgByID(r.Context(), inv.OrgID)
		}
	} else {
		err = ci.ErrNotFound
	}
	switch {
	case err == nil:
		return inv, org, true
	case errors.Is(err, ci.ErrNotFound):
		s.signins.Failure(ip, "")
		s.renderInviteInvalid(w, r)
	default:
		s.uiError(w, r, err)
	}
	return inv, org, false
}

// invitePrincipal returns the signed-in user, or nil.
func (s *Server) invitePrincipal(r *http.Request) (*principal, error) {
	sess, err := s.sessionFromCookie(r)
	if err != nil {
		if errors.Is(err, ci.ErrUnauthenticated) {
			return nil, nil
		}
		return nil, err
	}
	u, err := s.db.UserByID(r.Context(), sess.UserID)
	if err != nil {
		return nil, err
	}
	return &principal{User: u, Session: sess}, nil
}

// renderInvite shows what the link offers, for the visitor as they are.
func (s *Server) renderInvite(w http.ResponseWriter, r *http.Request, status int, inv ci.Invitation, org ci.Org, p *principal, name, errMsg string) {
	d := inviteData{Org: org, Role: inv.Role, Email: inv.Email, Name: name,
		SignIn: "/signin?next=" + url.QueryEscape(r.URL.Path)}
	pg := page{Title: "Join " + org.Name, Error: errMsg, Data: &d}
	switch {
	case p != nil && p.User.Email == inv.Email:
		d.Mode = "accept"
	case p != nil:
		d.Mode, d.Masked, d.Email = "mismatch", maskEmail(inv.Email), ""
	default:
		_, err := s.db.UserByEmail(r.Context(), inv.Email)
		switch {
		case err == nil:
			d.Mode = "signin"
		case errors.Is(err, ci.ErrNotFound):
			d.Mode = "new"
		default:
			s.uiError(w, r, err)
			return
		}
	}
	if p != nil {
		pg.User, pg.CSRF = &p.User, p.Session.CSRFToken
		if orgs, err := s.db.ListUserOrgs(r.Context(), p.User.ID); err == nil {
			pg.Orgs = orgs
		}
	}
	if d.Mode == "mismatch" && status == http.StatusOK {
		status = http.StatusForbidden
	}
	s.render(w, r, status, "invite", pg)
}

func (s *Server) invitePage(w http.ResponseWriter, r *http.Request) {
	inv, org, p, ok := s.loadInviteFor(w, r)
	if !ok {
		return
	}
	s.renderInvite(w, r, http.StatusOK, inv, org, p, "", "")
}

// loadInviteFor is loadInvite and the signed-in visitor (nil when nobody
// is signed in).
func (s *Server) loadInviteFor(w http.ResponseWriter, r *http.Request) (ci.Invitation, ci.Org, *principal, bool) {
	inv, org, ok := s.loadInvite(w, r)
	if !ok {
		return inv, org, nil, false
	}
	p, err := s.invitePrincipal(r)
	if err != nil {
		s.uiError(w, r, err)
		return inv, org, nil, false
	}
	return inv, org, p, true
}

// inviteSubmit accepts the invitation: for the signed-in invitee (with the
// session's CSRF token), or by creating the invitee's account when nobody
// is signed in. Either way the invitation is used in the same transaction
// that adds the membership, only if it is still pending.
func (s *Server) inviteSubmit(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(r); err != nil {
		s.uiError(w, r, err)
		return
	}
	inv, org, p, ok := s.loadInviteFor(w, r)
	if !ok {
		return
	}
	if p != nil {
		s.inviteAccept(w, r, inv, org, p)
		return
	}
	s.inviteCreateAccount(w, r, inv, org)
}

// inviteAccept adds the signed-in user, who must be the invitee.
func (s *Server) inviteAccept(w http.ResponseWriter, r *http.Request, inv ci.Invitation, org ci.Org, p *principal) {
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(p.Session.CSRFToken)) != 1 {
		s.uiError(w, r, ci.Errorf(ci.ErrForbidden, "csrf", "this form has expired: go back, reload the page and try again"))
		return
	}
	if p.User.Email != inv.Email {
		uid := p.User.ID
		s.audit(r, ci.AuditEvent{OrgID: &inv.OrgID, ActorID: &uid, Actor: p.User.Email, Action: "member.join",
			Target: "user:" + p.User.Email, Outcome: ci.OutcomeFailure,
			Details: map[string]string{"reason": "invitation for another email", "invitation": strconv.FormatInt(inv.ID, 10)}})
		s.renderInvite(w, r, http.StatusForbidden, inv, org, p, "", "")
		return
	}
	var joined bool
	err := s.db.InTx(r.Context(), func(tx *store.Tx) error { return s.acceptInviteTx(r, tx, p.User, &joined) })
	if err != nil {
		if errors.Is(err, ci.ErrNotFound) {
			s.renderInviteInvalid(w, r)
			return
		}
		s.uiError(w, r, err)
		return
	}
	msg := "You joined " + org.Name + " as " + roleWords(inv.Role) + "."
	if !joined {
		msg = "You were already a member of " + org.Name + "; your role is unchanged."
	}
	s.redirectFlash(w, r, "/orgs/"+org.Slug, flashOK, msg)
}

// acceptInviteTx uses the link's invitation for user inside tx (ci.ErrNotFound
// when it is no longer pending or not for user's email) and records
// member.join; joined reports whether user was not a member already.
func (s *Server) acceptInviteTx(r *http.Request, tx *store.Tx, user ci.User, joined *bool) error {
	ctx := r.Context()
	inv, ok, err := tx.AcceptInvitation(ctx, auth.HashToken(r.PathValue("token")), user)
	if err != nil {
		return err
	}
	*joined = ok
	details := map[string]string{"role": string(inv.Role), "invitation": strconv.FormatInt(inv.ID, 10)}
	if !ok {
		details["already_member"] = "true"
	}
	return tx.AppendAudit(ctx, ci.AuditEvent{OrgID: &inv.OrgID, ActorID: &user.ID, Actor: user.Email, Action: "member.join",
		Target: "user:" + user.Email, Outcome: ci.OutcomeSuccess, ClientIP: clientIP(r), Details: details})
}

// inviteCreateAccount creates the invitee's account and membership in one
// transaction and signs them in.
func (s *Server) inviteCreateAccount(w http.ResponseWriter, r *http.Request, inv ci.Invitation, org ci.Org) {
	ctx := r.Context()
	name := strings.TrimSpace(r.PostFormValue("name"))
	fail := func(err error) {
		status, _, msg := errorStatus(err)
		if status >= 500 {
			s.uiError(w, r, err)
			return
		}
		s.renderInvite(w, r, status, inv, org, nil, name, sentence(msg))
	}
	hash, err := newAccountPassword(r, name)
	if err != nil {
		fail(err)
		return
	}
	var user ci.User
	var joined bool
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if user, err = tx.CreateUser(ctx, inv.Email, name, hash); err != nil {
			if errors.Is(err, ci.ErrConflict) {
				return ci.Errorf(ci.ErrConflict, "account_exists", "an account with this email exists already: sign in to accept the invitation")
			}
			return err
		}
		return s.acceptInviteTx(r, tx, user, &joined)
	})
	if errors.Is(err, ci.ErrConflict) {
		// Two submissions at once: the account is the other one's, and the
		// link is used up, which the invalid-link page says.
		if _, err := s.db.InvitationByHash(ctx, auth.HashToken(r.PathValue("token"))); errors.Is(err, ci.ErrNotFound) {
			s.renderInviteInvalid(w, r)
			return
		}
	}
	switch {
	case errors.Is(err, ci.ErrNotFound):
		s.renderInviteInvalid(w, r)
		return
	case err != nil:
		fail(err)
		return
	}
	if err := s.startSession(ctx, w, user); err != nil {
		s.uiError(w, r, err)
		return
	}
	s.redirectFlash(w, r, "/orgs/"+org.Slug, flashOK, "Welcome to kitewatch: you joined "+org.Name+" as "+roleWords(inv.Role)+".")
}
