package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/kitewatch/kitewatch/internal/auth"
	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/web/middleware"
)

// principal is the authenticated caller of a request.
type principal struct {
	User    ci.User
	Session *ci.Session  // set for browser sessions
	Token   *ci.APIToken // set for API tokens
	Org     *ci.Org      // set on organization routes
	Role    ci.Role      // the caller's role in Org
}

func (p *principal) actorID() *int64 { id := p.User.ID; return &id }

var errNoRoute = ci.Errorf(ci.ErrNotFound, "not_found", "no such API endpoint")

// authenticate finds the caller from an API token (Authorization: Bearer
// kw_...) or the session cookie. It returns ci.ErrUnauthenticated when
// neither is present and valid.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || !auth.LooksLikeAPIToken(strings.TrimSpace(tok)) {
			return nil, ci.Errorf(ci.ErrUnauthenticated, "invalid_token", "the API token is not valid: send Authorization: Bearer kw_...")
		}
		t, err := s.db.APITokenByHash(ctx, auth.HashToken(strings.TrimSpace(tok)))
		if err != nil {
			if errors.Is(err, ci.ErrNotFound) {
				return nil, ci.Errorf(ci.ErrUnauthenticated, "invalid_token", "the API token is not valid or was revoked")
			}
			return nil, err
		}
		u, err := s.db.UserByID(ctx, t.UserID)
		if err != nil {
			return nil, err
		}
		now := s.db.Now()
		if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > time.Minute {
			_ = s.db.TouchAPIToken(ctx, t.ID, now)
		}
		return &principal{User: u, Token: &t}, nil
	}
	sess, err := s.sessionFromCookie(r)
	if err != nil {
		return nil, err
	}
	u, err := s.db.UserByID(ctx, sess.UserID)
	if err != nil {
		return nil, err
	}
	return &principal{User: u, Session: sess}, nil
}

func (s *Server) sessionFromCookie(r *http.Request) (*ci.Session, error) {
	c, err := r.Cookie(auth.SessionCookieName(s.Secure))
	if err != nil || !auth.LooksLikeToken(auth.PrefixSession, c.Value) {
		return nil, ci.Errorf(ci.ErrUnauthenticated, "unauthenticated", "sign in or send an API token: Authorization: Bearer kw_...")
	}
	sess, err := s.db.SessionByHash(r.Context(), auth.HashToken(c.Value))
	if err != nil {
		if errors.Is(err, ci.ErrNotFound) {
			return nil, ci.Errorf(ci.ErrUnauthenticated, "session_expired", "your session has expired: sign in again")
		}
		return nil, err
	}
	now := s.db.Now()
	if now.Sub(sess.LastSeen) > 5*time.Minute {
		_ = s.db.TouchSession(r.Context(), sess.ID, now, now.Add(s.SessionTTL))
	}
	return &sess, nil
}

type apiHandler func(w http.ResponseWriter, r *http.Request, p *principal) error

// api wraps an authenticated JSON API handler.
func (s *Server) api(h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := h(w, r, p); err != nil {
			s.writeError(w, r, err)
		}
	})
}

type roleNeed int

const (
	roleMember roleNeed = iota
	roleAdmin
)

// orgAPI wraps a JSON API handler under /api/v1/orgs/{org}/: the caller must
// be a member (or an admin for roleAdmin). Organizations the caller does not
// belong to answer 404 exactly like missing ones.
func (s *Server) orgAPI(need roleNeed, h apiHandler) http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request, p *principal) error {
		if err := s.loadOrg(r.Context(), r.PathValue("org"), need, p); err != nil {
			return err
		}
		return h(w, r, p)
	})
}

func (s *Server) loadOrg(ctx context.Context, slug string, need roleNeed, p *principal) error {
	hidden := ci.Errorf(ci.ErrNotFound, "not_found", "organization not found")
	org, err := s.db.OrgBySlug(ctx, slug)
	if err != nil {
		if errors.Is(err, ci.ErrNotFound) {
			return hidden
		}
		return err
	}
	m, err := s.db.Membership(ctx, org.ID, p.User.ID)
	if err != nil {
		if errors.Is(err, ci.ErrNotFound) {
			return hidden
		}
		return err
	}
	p.Org, p.Role = &org, m.Role
	if need == roleAdmin && m.Role != ci.RoleAdmin {
		return ci.Errorf(ci.ErrForbidden, "admin_required", "only admins of this organization can do this")
	}
	return nil
}

// audit records a security event; failures to record are logged, never shown.
func (s *Server) audit(r *http.Request, e ci.AuditEvent) {
	if e.ClientIP == "" {
		e.ClientIP = middleware.ClientIPFrom(r.Context())
	}
	if err := s.db.AppendAudit(r.Context(), e); err != nil {
		s.logger.ErrorContext(r.Context(), "audit event not recorded", "action", e.Action, "error", err)
	}
}
