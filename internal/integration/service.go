// Package integration runs the lifecycle of an organization's Buildkite
// connection: connect (verify first, then store the token sealed), status,
// re-check, rotate, disconnect, and handing out API clients to the rest of
// kitewatch. The token is decrypted only here, only when needed, and never
// leaves in a status, an error or a log.
package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kitewatch/kitewatch/internal/auth"
	"github.com/kitewatch/kitewatch/internal/bk"
	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/secrets"
	"github.com/kitewatch/kitewatch/internal/store"
)

// Kind is the integration kind this package manages.
const Kind = "buildkite"

// Check triggers, recorded in the history.
const (
	TriggerConnect = "connect"
	TriggerRecheck = "scheduled"
	TriggerManual  = "manual"
	TriggerRotate  = "rotate"
)

// Problem codes this package adds to the verifier's.
const (
	CodeUndecryptable = "token_undecryptable"
	// CodeKeyServiceUnavailable: the key service (a KMS) did not answer when
	// the stored token was needed; nothing about the integration changed.
	CodeKeyServiceUnavailable = "key_service_unavailable"
	CodeTooManyTries          = "too_many_attempts"
)

// Service manages Buildkite integrations.
type Service struct {
	db         *store.DB
	keys       *secrets.Keyring
	baseURL    string
	httpClient *http.Client
	logger     *slog.Logger
	attempts   *auth.RateLimiter
	onConnect  func(ctx context.Context, org ci.Org)

	lockWait time.Duration

	mu    sync.Mutex
	locks map[int64]*gate // per organization: token users hold it shared, swaps exclusively
}

// Options configures a Service.
type Options struct {
	DB         *store.DB
	Keys       *secrets.Keyring
	BaseURL    string       // Buildkite REST API base URL
	HTTPClient *http.Client // transport for Buildkite calls (tests, demo)
	Logger     *slog.Logger
	// ConnectBurst and ConnectInterval rate-limit connect and rotate attempts
	// per organization, so kitewatch cannot be used to probe tokens
	// (default: 10 attempts, then one per 30 seconds).
	ConnectBurst    int
	ConnectInterval time.Duration
	// OnConnected runs after a successful connect, e.g. to start polling the
	// organization at once instead of at the next poll interval.
	OnConnected func(ctx context.Context, org ci.Org)
	// LockWait bounds how long a token swap (connect, rotate, disconnect)
	// waits for the organization's in-flight Buildkite requests to finish
	// (default 1 minute); past it the swap fails with a retryable error and
	// changes nothing.
	LockWait time.Duration
}

// New returns a Service.
func New(o Options) *Service {
	if o.ConnectBurst == 0 {
		o.ConnectBurst = 10
	}
	if o.ConnectInterval == 0 {
		o.ConnectInterval = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LockWait <= 0 {
		o.LockWait = time.Minute
	}
	return &Service{lockWait: o.LockWait, db: o.DB, keys: o.Keys, baseURL: strings.TrimRight(o.BaseURL, "/"), httpClient: o.HTTPClient, logger: o.Logger,
		attempts: auth.NewRateLimiter(auth.RateLimiterConfig{Interval: o.ConnectInterval, Burst: o.ConnectBurst}),
		locks:    map[int64]*gate{}, onConnect: o.OnConnected}
}

// BaseURL is the Buildkite API the service talks to.
func (s *Service) BaseURL() string { return s.baseURL }

func (s *Service) lock(orgID int64) *gate {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.locks[orgID]
	if !ok {
		l = newGate()
		s.locks[orgID] = l
	}
	return l
}

// lockSwap takes org's gate exclusively for a token swap, waiting at most
// s.lockWait for in-flight requests. The caller must call the returned
// unlock.
func (s *Service) lockSwap(ctx context.Context, orgID int64) (func(), error) {
	l := s.lock(orgID)
	wctx, cancel := context.WithTimeout(ctx, s.lockWait)
	defer cancel()
	if err := l.Lock(wctx); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.logger.WarnContext(ctx, "token swap gave up waiting for in-flight Buildkite requests", "org_id", orgID, "waited", s.lockWait)
		return nil, ci.Errorf(ci.ErrUnavailable, "integration_busy",
			"a Buildkite request for this organization is still running, so the token cannot be swapped safely; nothing was changed, try again in a minute")
	}
	return l.Unlock, nil
}

// Actor is who performs a change, for the audit log.
type Actor struct {
	UserID   *int64
	Email    string
	ClientIP string
}

// Status is what anyone in the organization may see about the integration.
// It never contains the token.
type Status struct {
	Status         string                `json:"status"`
	Organization   *bk.OrgRef            `json:"organization"`
	Token          *bk.TokenFacts        `json:"token"`
	RequiredScopes []string              `json:"required_scopes"`
	LastVerifiedAt *time.Time            `json:"last_verified_at"`
	LastResult     string                `json:"last_result"` // ok, problems or "" when never checked
	Problems       []bk.Problem          `json:"problems"`
	ConnectedBy    string                `json:"connected_by,omitempty"`
	ConnectedAt    *time.Time            `json:"connected_at"`
	History        []ci.IntegrationCheck `json:"history"`
}

// VerificationError is returned when a token fails verification: nothing
// was stored, and Problems say what is wrong.
type VerificationError struct {
	Report bk.Report
}

func (e *VerificationError) Error() string {
	return "the Buildkite token did not pass verification: " + strings.Join(e.Report.Codes(), ", ")
}

// Problems returns the errors and warnings found.
func (e *VerificationError) Problems() []bk.Problem { return e.Report.Problems }

func (s *Service) verify(ctx context.Context, token secrets.Secret, opts bk.VerifyOptions) bk.Report {
	opts.HTTPClient = s.httpClient
	opts.Now = s.db.Now
	return bk.Verify(ctx, s.baseURL, token, opts)
}

func (s *Service) ad(orgID int64) []byte { return secrets.AssociatedData(orgID, Kind, "token") }

func problemsJSON(p []bk.Problem) json.RawMessage {
	if p == nil {
		p = []bk.Problem{}
	}
	b, _ := json.Marshal(p)
	return b
}

func factsJSON(f bk.TokenFacts) json.RawMessage { b, _ := json.Marshal(f); return b }

// Status returns the organization's integration status.
func (s *Service) Status(ctx context.Context, org ci.Org) (Status, error) {
	st := Status{Status: ci.StatusNotConnected, RequiredScopes: bk.RequiredScopeNames(), Problems: []bk.Problem{}, History: []ci.IntegrationCheck{}}
	in, err := s.db.Integration(ctx, org.ID, Kind)
	if errors.Is(err, ci.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	st.Status = in.Status
	if in.ExtOrgSlug != "" {
		st.Organization = &bk.OrgRef{Slug: in.ExtOrgSlug, Name: in.ExtOrgName, ID: in.ExtOrgID}
	}
	if len(in.Facts) > 0 && in.Status != ci.StatusDisconnected {
		var f bk.TokenFacts
		if err := json.Unmarshal(in.Facts, &f); err == nil {
			st.Token = &f
		}
	}
	if len(in.Problems) > 0 {
		_ = json.Unmarshal(in.Problems, &st.Problems)
	}
	st.LastVerifiedAt, st.ConnectedAt = in.LastCheckedAt, in.ConnectedAt
	if in.LastCheckedAt != nil {
		st.LastResult = "problems"
		if in.LastCheckOK {
			st.LastResult = "ok"
		}
	}
	if in.ConnectedBy != nil {
		if u, err := s.db.UserByID(ctx, *in.ConnectedBy); err == nil {
			st.ConnectedBy = u.Email
		}
	}
	if h, err := s.db.ListChecks(ctx, in.ID, 10); err == nil && h != nil {
		st.History = h
	}
	return st, nil
}

func (s *Service) allowAttempt(org ci.Org) error {
	if ok, wait := s.attempts.Allow(fmt.Sprint(org.ID)); !ok {
		return &ci.Error{Kind: ci.ErrRateLimited, Code: CodeTooManyTries,
			Message: fmt.Sprintf("too many connection attempts for this organization: try again in %s", wait.Round(time.Second)+time.Second)}
	}
	return nil
}

func (s *Service) auditTx(ctx context.Context, tx interface {
	AppendAudit(context.Context, ci.AuditEvent) error
}, org ci.Org, a Actor, action, target, outcome string, details map[string]string) error {
	return tx.AppendAudit(ctx, ci.AuditEvent{OrgID: &org.ID, ActorID: a.UserID, Actor: a.Email, Action: action,
		Target: target, Outcome: outcome, ClientIP: a.ClientIP, Details: details})
}

func (s *Service) auditFailure(ctx context.Context, org ci.Org, a Actor, action string, r bk.Report) {
	if err := s.auditTx(ctx, s.db, org, a, action, "buildkite", ci.OutcomeFailure,
		map[string]string{"problems": strings.Join(r.Codes(), ",")}); err != nil {
		s.logger.ErrorContext(ctx, "audit event not recorded", "action", action, "error", err)
	}
}

// Connect verifies token and, when it passes, stores it sealed and marks the
// integration connected. When it fails nothing is stored, any previous
// connection is left untouched, and the error is a *VerificationError.
func (s *Service) Connect(ctx context.Context, org ci.Org, a Actor, token secrets.Secret, bkOrg string) (Status, bk.Report, error) {
	bkOrg = strings.TrimSpace(bkOrg)
	if !validBuildkiteSlug(bkOrg) {
		return Status{}, bk.Report{}, ci.Errorf(ci.ErrInvalid, "invalid_organization",
			"the Buildkite organization must be its slug, as in buildkite.com/<slug>: letters, digits, dashes and underscores only")
	}
	if err := s.allowAttempt(org); err != nil {
		return Status{}, bk.Report{}, err
	}
	r := s.verify(ctx, token, bk.VerifyOptions{Organization: bkOrg})
	if !r.OK() {
		s.auditFailure(ctx, org, a, "buildkite.connect", r)
		return Status{}, r, &VerificationError{Report: r}
	}
	if err := s.storeSwapped(ctx, org, a, token, r); err != nil {
		return Status{}, r, err
	}
	// The callback runs with the gate released: one that asks for a client
	// (a poll started right away) would otherwise wait on this very swap.
	if s.onConnect != nil {
		s.onConnect(ctx, org)
	}
	st, err := s.Status(ctx, org)
	return st, r, err
}

// storeSwapped stores a connect's verified token while holding the
// organization's gate exclusively.
func (s *Service) storeSwapped(ctx context.Context, org ci.Org, a Actor, token secrets.Secret, r bk.Report) error {
	unlock, err := s.lockSwap(ctx, org.ID)
	if err != nil {
		return err
	}
	defer unlock()
	return s.store(ctx, org, a, token, r, TriggerConnect, "buildkite.connect")
}

// validBuildkiteSlug reports whether slug is empty (let the token's only
// organization be chosen) or shaped like a Buildkite organization slug. The
// slug becomes part of API paths (go-buildkite does not escape it), so
// anything that could change the path ("/", "..", "?", "#", "%") is refused
// before a request is sent.
func validBuildkiteSlug(slug string) bool { return bk.ValidSlug(slug) }

// store seals token and saves the integration as connected, with its check
// and audit event, in one transaction.
func (s *Service) store(ctx context.Context, org ci.Org, a Actor, token secrets.Secret, r bk.Report, trigger, action string) error {
	sealed, err := s.keys.Seal(ctx, []byte(token.Reveal()), s.ad(org.ID))
	if err != nil {
		return fmt.Errorf("encrypt the Buildkite token: %w", err)
	}
	now := s.db.Now()
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		prev, err := tx.Integration(ctx, org.ID, Kind)
		if err != nil && !errors.Is(err, ci.ErrNotFound) {
			return err
		}
		in := ci.Integration{ID: prev.ID, OrgID: org.ID, Kind: Kind, Status: ci.StatusConnected, ExtOrgSlug: r.Organization.Slug,
			ExtOrgName: r.Organization.Name, ExtOrgID: r.Organization.ID, TokenSealed: sealed, TokenKEKID: s.keys.PrimaryID(),
			Generation: prev.Generation + 1, Facts: factsJSON(r.Token), Problems: problemsJSON(r.Problems),
			LastCheckedAt: &now, LastCheckOK: true, EverVerified: true, ConnectedBy: a.UserID, ConnectedAt: &now}
		if trigger == TriggerRotate {
			in.ConnectedBy, in.ConnectedAt = prev.ConnectedBy, prev.ConnectedAt
		}
		in, err = tx.SaveIntegration(ctx, in)
		if err != nil {
			return err
		}
		if err := tx.AddCheck(ctx, in.ID, ci.IntegrationCheck{Trigger: trigger, OK: true, Codes: r.Codes(), Problems: problemsJSON(r.Problems), CheckedAt: now}); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, org, a, action, "buildkite:"+r.Organization.Slug, ci.OutcomeSuccess,
			map[string]string{"token": r.Token.Masked, "warnings": strings.Join(r.Codes(), ",")})
	})
}

// token opens the stored token. An undecryptable record (wrong key, or a
// ciphertext copied from another organization) marks the integration
// needs_attention and nothing is sent to Buildkite.
func (s *Service) token(ctx context.Context, org ci.Org, in ci.Integration) (secrets.Secret, error) {
	if len(in.TokenSealed) == 0 {
		return secrets.Secret{}, ci.Errorf(ci.ErrConflict, "not_connected", "Buildkite is not connected for this organization")
	}
	plain, err := s.keys.Open(ctx, in.TokenSealed, s.ad(org.ID))
	if err != nil && !errors.Is(err, secrets.ErrUndecryptable) {
		// The key service did not answer (or ctx ended): that says nothing
		// about the record, so the integration's status stays as it is.
		s.logger.WarnContext(ctx, "key service unavailable: stored Buildkite token not opened", "org", org.Slug, "error", err)
		return secrets.Secret{}, &ci.Error{Kind: ci.ErrUnavailable, Code: CodeKeyServiceUnavailable,
			Message: "kitewatch cannot reach its key service to open the stored Buildkite token; nothing was changed. Try again shortly.", Err: err}
	}
	if err != nil {
		s.logger.ErrorContext(ctx, "stored Buildkite token cannot be decrypted", "org", org.Slug, "error", err)
		p := bk.Problem{Code: CodeUndecryptable, Severity: bk.SeverityError,
			Message: "kitewatch cannot decrypt the stored Buildkite token: the key encryption key changed, or the record was altered or copied from elsewhere.",
			Remedy:  "Start kitewatch with the key it was connected with, or rotate the token (paste a new one) to store it afresh."}
		in.Status, in.Problems = ci.StatusNeedsAttention, problemsJSON([]bk.Problem{p})
		now := s.db.Now()
		_, _ = s.db.RecordCheck(ctx, in, ci.IntegrationCheck{Trigger: TriggerRecheck, Codes: []string{p.Code}, Problems: in.Problems, CheckedAt: now})
		return secrets.Secret{}, &ci.Error{Kind: ci.ErrConflict, Code: CodeUndecryptable, Message: p.Message, Err: err}
	}
	return secrets.NewSecret(string(plain)), nil
}

// Recheck verifies the stored token again and records the outcome: a
// revoked, expired or de-scoped token, or lost organization access, moves
// the integration to needs_attention, and a passing check moves it back.
func (s *Service) Recheck(ctx context.Context, org ci.Org, a Actor, trigger string) (Status, error) {
	l := s.lock(org.ID)
	if err := l.RLock(ctx); err != nil {
		return Status{}, err
	}
	// release runs once, on every path: the deferred call covers a panic
	// in the key service or the Buildkite client (recovered further up), which
	// would otherwise hold the gate for good and make every later swap of
	// this organization's token fail as integration_busy.
	var once sync.Once
	release := func() { once.Do(l.RUnlock) }
	defer release()
	in, err := s.db.Integration(ctx, org.ID, Kind)
	if err != nil || in.Status == ci.StatusDisconnected || in.Status == ci.StatusNotConnected {
		release()
		if err == nil || errors.Is(err, ci.ErrNotFound) {
			return Status{}, ci.Errorf(ci.ErrConflict, "not_connected", "Buildkite is not connected for this organization")
		}
		return Status{}, err
	}
	tok, err := s.token(ctx, org, in)
	if err != nil {
		release()
		st, _ := s.Status(ctx, org)
		if errors.Is(err, ci.ErrUnavailable) {
			// Nothing was checked: say so rather than show the old result.
			return st, err
		}
		return st, nil
	}
	var prevFacts bk.TokenFacts
	_ = json.Unmarshal(in.Facts, &prevFacts)
	r := s.verify(ctx, tok, bk.VerifyOptions{Organization: in.ExtOrgSlug, PreviouslyVerified: in.EverVerified, ExpiresAt: prevFacts.ExpiresAt})
	release()

	before := in.Status
	ok := r.OK()
	in.Status = ci.StatusConnected
	if !ok {
		in.Status = ci.StatusNeedsAttention
	}
	if r.Token.Scopes != nil || ok {
		in.Facts = factsJSON(r.Token)
	}
	in.Problems = problemsJSON(r.Problems)
	if ok {
		in.EverVerified = true
		if r.Organization.Name != "" {
			in.ExtOrgName = r.Organization.Name
		}
	}
	now := s.db.Now()
	applied, err := s.db.RecordCheck(ctx, in, ci.IntegrationCheck{Trigger: trigger, OK: ok, Codes: r.Codes(), Problems: in.Problems, CheckedAt: now})
	if err != nil {
		return Status{}, err
	}
	if applied && (before != in.Status || trigger == TriggerManual) {
		outcome := ci.OutcomeSuccess
		if !ok {
			outcome = ci.OutcomeFailure
		}
		if err := s.auditTx(ctx, s.db, org, a, "buildkite.verify", "buildkite:"+in.ExtOrgSlug, outcome,
			map[string]string{"status": in.Status, "previous_status": before, "problems": strings.Join(r.Codes(), ","), "trigger": trigger}); err != nil {
			s.logger.ErrorContext(ctx, "audit event not recorded", "error", err)
		}
	}
	return s.Status(ctx, org)
}

// Rotate verifies newToken and swaps it in: API users of the old token are
// drained first (they hold the organization's read lock), the old token is
// optionally revoked at Buildkite before the swap, and after the swap only
// the new token is ever sent.
func (s *Service) Rotate(ctx context.Context, org ci.Org, a Actor, newToken secrets.Secret, revokePrevious bool) (Status, bk.Report, error) {
	if err := s.allowAttempt(org); err != nil {
		return Status{}, bk.Report{}, err
	}
	in, err := s.db.Integration(ctx, org.ID, Kind)
	if errors.Is(err, ci.ErrNotFound) || (err == nil && len(in.TokenSealed) == 0) {
		return Status{}, bk.Report{}, ci.Errorf(ci.ErrConflict, "not_connected", "Buildkite is not connected for this organization: connect it first")
	}
	if err != nil {
		return Status{}, bk.Report{}, err
	}
	r := s.verify(ctx, newToken, bk.VerifyOptions{Organization: in.ExtOrgSlug})
	if !r.OK() {
		s.auditFailure(ctx, org, a, "buildkite.rotate", r)
		return Status{}, r, &VerificationError{Report: r}
	}
	unlock, err := s.lockSwap(ctx, org.ID)
	if err != nil {
		return Status{}, r, err
	}
	defer unlock()
	revoked := "no"
	if revokePrevious {
		if old, err := s.token(ctx, org, in); err == nil && old.Reveal() != newToken.Reveal() {
			revoked = "yes"
			if err := s.revoke(ctx, old); err != nil {
				revoked = "failed"
				s.logger.WarnContext(ctx, "revoking the previous Buildkite token failed", "org", org.Slug, "error", err)
				r.Problems = append(r.Problems, bk.Problem{Code: "previous_token_not_revoked", Severity: bk.SeverityWarning,
					Message: "The new token is in use, but revoking the previous token at Buildkite failed: " + safeErr(err),
					Remedy:  "Revoke the previous token on Buildkite's API Access Tokens page."})
			}
		}
	}
	if err := s.store(ctx, org, a, newToken, r, TriggerRotate, "buildkite.rotate"); err != nil {
		return Status{}, r, err
	}
	_ = s.auditTx(ctx, s.db, org, a, "buildkite.rotate.revoke_previous", "buildkite:"+r.Organization.Slug, ci.OutcomeSuccess, map[string]string{"revoked": revoked})
	st, err := s.Status(ctx, org)
	return st, r, err
}

func (s *Service) revoke(ctx context.Context, tok secrets.Secret) error {
	c, err := s.newClient(tok)
	if err != nil {
		return err
	}
	return c.RevokeToken(ctx)
}

func (s *Service) newClient(tok secrets.Secret) (*bk.Client, error) {
	var opts []bk.Option
	if s.httpClient != nil {
		opts = append(opts, bk.WithHTTPClient(s.httpClient))
	}
	return bk.NewClient(s.baseURL, tok, opts...)
}

// safeErr renders an error from the Buildkite client for a user. The client
// guarantees its errors never contain the token.
func safeErr(err error) string { return err.Error() }

// Disconnect optionally revokes the token at Buildkite, then erases the
// sealed token (and with it its wrapped data key) and marks the integration
// disconnected. It reports whether the revocation succeeded.
func (s *Service) Disconnect(ctx context.Context, org ci.Org, a Actor, revoke bool) (Status, error) {
	unlock, err := s.lockSwap(ctx, org.ID)
	if err != nil {
		return Status{}, err
	}
	defer unlock()
	in, err := s.db.Integration(ctx, org.ID, Kind)
	if errors.Is(err, ci.ErrNotFound) || (err == nil && in.Status == ci.StatusDisconnected) {
		return Status{}, ci.Errorf(ci.ErrConflict, "not_connected", "Buildkite is not connected for this organization")
	}
	if err != nil {
		return Status{}, err
	}
	revoked := "not requested"
	var revokeErr error
	if revoke {
		tok, err := s.token(ctx, org, in)
		if err != nil {
			revokeErr = err
		} else if err := s.revoke(ctx, tok); err != nil && !bk.IsUnauthorized(err) {
			revokeErr = err
		}
		revoked = "yes"
		if revokeErr != nil {
			revoked = "failed"
		}
	}
	if revokeErr != nil {
		_ = s.auditTx(ctx, s.db, org, a, "buildkite.disconnect", "buildkite:"+in.ExtOrgSlug, ci.OutcomeFailure, map[string]string{"revoke": "failed"})
		return Status{}, &ci.Error{Kind: ci.ErrConflict, Code: "revoke_failed",
			Message: "Revoking the token at Buildkite failed, so kitewatch kept the connection: " + safeErr(revokeErr) +
				". Try again, or disconnect without revoking and revoke the token on Buildkite's API Access Tokens page."}
	}
	now := s.db.Now()
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		in.Status, in.TokenSealed, in.TokenKEKID = ci.StatusDisconnected, nil, ""
		in.Generation++
		in.Problems = problemsJSON(nil)
		in.LastCheckedAt = &now
		if _, err := tx.SaveIntegration(ctx, in); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, org, a, "buildkite.disconnect", "buildkite:"+in.ExtOrgSlug, ci.OutcomeSuccess, map[string]string{"revoked": revoked})
	})
	if err != nil {
		return Status{}, err
	}
	return s.Status(ctx, org)
}

// Client returns a Buildkite client for the organization's stored token and
// a release function that must be called when the caller is done sending
// requests with it: a rotation waits for every client to be released before
// the swap, so the old token is never sent after it.
func (s *Service) Client(ctx context.Context, orgID int64) (*bk.Client, func(), error) {
	org, err := s.db.OrgByID(ctx, orgID)
	if err != nil {
		return nil, nil, err
	}
	l := s.lock(orgID)
	if err := l.RLock(ctx); err != nil {
		return nil, nil, err
	}
	var once sync.Once
	release := func() { once.Do(l.RUnlock) }
	// Until the client is handed over, the gate is released here on every
	// path, a panic (in the key service, say) included.
	handed := false
	defer func() {
		if !handed {
			release()
		}
	}()
	in, err := s.db.Integration(ctx, orgID, Kind)
	if err != nil || in.Status != ci.StatusConnected && in.Status != ci.StatusNeedsAttention {
		if err == nil {
			err = ci.Errorf(ci.ErrConflict, "not_connected", "Buildkite is not connected for this organization")
		}
		return nil, nil, err
	}
	tok, err := s.token(ctx, org, in)
	if err != nil {
		return nil, nil, err
	}
	c, err := s.newClient(tok)
	if err != nil {
		return nil, nil, err
	}
	handed = true
	return c, release, nil
}

// RecheckAll re-verifies every connected integration (the periodic task).
// One organization's failure does not stop the others.
func (s *Service) RecheckAll(ctx context.Context) error {
	list, err := s.db.ListIntegrations(ctx, Kind)
	if err != nil {
		return err
	}
	var errs []error
	for _, in := range list {
		if in.Status != ci.StatusConnected && in.Status != ci.StatusNeedsAttention {
			continue
		}
		org, err := s.db.OrgByID(ctx, in.OrgID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := s.Recheck(ctx, org, Actor{Email: "kitewatch (scheduled re-check)", ClientIP: "local"}, TriggerRecheck); err != nil {
			errs = append(errs, fmt.Errorf("re-check %s: %w", org.Slug, err))
		}
	}
	return errors.Join(errs...)
}
