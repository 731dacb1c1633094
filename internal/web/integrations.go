package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/kitewatch/kitewatch/internal/bk"
	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/integration"
	"github.com/kitewatch/kitewatch/internal/secrets"
)

func (s *Server) integrationRoutes() {
	s.mux.Handle("GET /api/v1/orgs/{org}/integrations", s.orgAPI(roleMember, s.listIntegrations))
	s.mux.Handle("GET /api/v1/orgs/{org}/integrations/buildkite", s.orgAPI(roleMember, s.getBuildkite))
	s.mux.Handle("POST /api/v1/orgs/{org}/integrations/buildkite", s.orgAPI(roleAdmin, s.connectBuildkite))
	s.mux.Handle("POST /api/v1/orgs/{org}/integrations/buildkite/verify", s.orgAPI(roleAdmin, s.verifyBuildkite))
	s.mux.Handle("PUT /api/v1/orgs/{org}/integrations/buildkite/token", s.orgAPI(roleAdmin, s.rotateBuildkite))
	s.mux.Handle("DELETE /api/v1/orgs/{org}/integrations/buildkite", s.orgAPI(roleAdmin, s.disconnectBuildkite))
}

func (p *principal) actor(r *http.Request) integration.Actor {
	return integration.Actor{UserID: p.actorID(), Email: p.User.Email, ClientIP: clientIP(r)}
}

func (s *Server) listIntegrations(w http.ResponseWriter, r *http.Request, p *principal) error {
	st, err := s.Integrations.Status(r.Context(), *p.Org)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"integrations": []map[string]any{{"kind": "buildkite", "name": "Buildkite", "status": st.Status,
		"organization": st.Organization, "last_verified_at": st.LastVerifiedAt, "last_result": st.LastResult}}})
	return nil
}

func (s *Server) getBuildkite(w http.ResponseWriter, r *http.Request, p *principal) error {
	st, err := s.Integrations.Status(r.Context(), *p.Org)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// verificationFailed is the 422 body of a failed connect or rotate.
type verificationFailed struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Problems []bk.Problem  `json:"problems"`
	Token    bk.TokenFacts `json:"token"`
}

// writeVerification answers a failed verification with its problems, or any
// other error as usual.
func (s *Server) writeVerification(w http.ResponseWriter, r *http.Request, err error) error {
	var ve *integration.VerificationError
	if !errors.As(err, &ve) {
		return err
	}
	var body verificationFailed
	body.Error.Code = "verification_failed"
	body.Error.Message = "kitewatch could not connect with this token: " + firstMessage(ve.Report)
	body.Problems, body.Token = ve.Report.Problems, ve.Report.Token
	writeJSON(w, http.StatusUnprocessableEntity, body)
	return nil
}

func firstMessage(r bk.Report) string {
	for _, p := range r.Problems {
		if p.Severity == bk.SeverityError {
			return p.Message
		}
	}
	return "the token did not pass verification"
}

// readToken validates the token field of a request before anything else.
func readToken(tok string) (secrets.Secret, error) {
	if tok == "" {
		return secrets.Secret{}, ci.Errorf(ci.ErrInvalid, "token_required", "token is required: paste a Buildkite API access token")
	}
	return secrets.NewSecret(tok), nil
}

func (s *Server) connectBuildkite(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Token        string `json:"token"`
		Organization string `json:"organization"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	tok, err := readToken(in.Token)
	in.Token = ""
	if err != nil {
		return err
	}
	st, _, err := s.Integrations.Connect(r.Context(), *p.Org, p.actor(r), tok, strings.TrimSpace(in.Organization))
	if err != nil {
		return s.writeVerification(w, r, err)
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) verifyBuildkite(w http.ResponseWriter, r *http.Request, p *principal) error {
	st, err := s.Integrations.Recheck(r.Context(), *p.Org, p.actor(r), integration.TriggerManual)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) rotateBuildkite(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Token          string `json:"token"`
		RevokePrevious bool   `json:"revoke_previous"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	tok, err := readToken(in.Token)
	in.Token = ""
	if err != nil {
		return err
	}
	st, _, err := s.Integrations.Rotate(r.Context(), *p.Org, p.actor(r), tok, in.RevokePrevious)
	if err != nil {
		return s.writeVerification(w, r, err)
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) disconnectBuildkite(w http.ResponseWriter, r *http.Request, p *principal) error {
	revoke := false
	switch v := r.URL.Query().Get("revoke"); v {
	case "", "false", "0":
	case "true", "1":
		revoke = true
	default:
		return ci.Errorf(ci.ErrInvalid, "invalid_revoke", "revoke must be true or false")
	}
	st, err := s.Integrations.Disconnect(r.Context(), *p.Org, p.actor(r), revoke)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}
