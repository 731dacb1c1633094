package bk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kitewatch/kitewatch/internal/secrets"
)

// ExpiringSoon is how close to its expiry a token gets a token_expiring_soon
// warning.
const ExpiringSoon = 14 * 24 * time.Hour

// DefaultVerifyTimeout is the deadline of each verification call.
const DefaultVerifyTimeout = 10 * time.Second

// MaxVerifyCalls is the most API calls Verify makes.
const MaxVerifyCalls = 5

// VerifyOptions tunes Verify. The zero value is usable.
type VerifyOptions struct {
	// Organization is the Buildkite organization slug to connect. When empty,
	// the token must reach exactly one organization.
	Organization string
	// PreviouslyVerified says the token verified successfully before, so a
	// 401 now means it was revoked (token_revoked) rather than never valid.
	PreviouslyVerified bool
	// ExpiresAt is the token's expiry from an earlier verification, if known,
	// so a 401 after it is reported as token_expired.
	ExpiresAt *time.Time
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// HTTPClient supplies the transport (default: like http.DefaultTransport).
	HTTPClient *http.Client
	// Timeout is the deadline of each API call (default 10 s).
	Timeout time.Duration
}

// TokenFacts describes the verified token. It never holds the token itself;
// Masked shows its prefix and last 4 characters.
type TokenFacts struct {
	UUID          string     `json:"uuid,omitempty"`
	Masked        string     `json:"masked"`
	Description   string     `json:"description,omitempty"`
	OwnerName     string     `json:"owner_name,omitempty"`
	OwnerEmail    string     `json:"owner_email,omitempty"`
	Scopes        []string   `json:"scopes"`
	MissingScopes []string   `json:"missing_scopes"`
	ExtraScopes   []string   `json:"extra_scopes"`
	CreatedAt     *time.Time `json:"created_at"`
	ExpiresAt     *time.Time `json:"expires_at"`
}

// Report is the result of Verify. Organization is set once the token is
// shown to reach it. Organizations lists every organization the token was
// seen to reach. Scopes are nil when the token could not be read.
type Report struct {
	Organization  OrgRef     `json:"organization"`
	Token         TokenFacts `json:"token"`
	Organizations []OrgRef   `json:"organizations"`
	Problems      []Problem  `json:"problems"`
	CheckedAt     time.Time  `json:"checked_at"`
	APICalls      int        `json:"api_calls"`
}

// OK reports whether the report has no error-severity problem (warnings are
// allowed).
func (r Report) OK() bool {
	for _, p := range r.Problems {
		if p.Severity == SeverityError {
			return false
		}
	}
	return true
}

// Problem returns the problem with the given code, if present.
func (r Report) Problem(code string) (Problem, bool) {
	for _, p := range r.Problems {
		if p.Code == code {
			return p, true
		}
	}
	return Problem{}, false
}

// Codes returns the codes of the report's problems in order.
func (r Report) Codes() []string {
	codes := make([]string, len(r.Problems))
	for i, p := range r.Problems {
		codes[i] = p.Code
	}
	return codes
}

func (r *Report) add(p Problem) {
	if _, dup := r.Problem(p.Code); dup {
		return
	}
	r.Problems = append(r.Problems, p)
}

// result of one verification call.
type result[T any] struct {
	v   T
	err error
	ran bool
}

// Verify checks that token can be used by kitewatch against the Buildkite API
// at baseURL (DefaultBaseURL when empty): a valid API access token, all 9
// scopes, not expired, with access to the organization, and Buildkite
// reachable. Malformed tokens and other kinds of Buildkite token are refused
// before any request. It calls GET /v2/access-token, /v2/user and
// /v2/organizations in parallel, then one organization-scoped read, at most
// 5 calls in all, each with its own deadline. Verify never fails: every
// failure is a Problem in the report, and no part of the report or its
// messages contains the token.
func Verify(ctx context.Context, baseURL string, token secrets.Secret, opts VerifyOptions) Report {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultVerifyTimeout
	}
	tok := token.Reveal()
	rep := Report{CheckedAt: now().UTC(), Token: TokenFacts{Masked: secrets.Mask(tok)}}

	if msg := tokenFormatProblem(tok); msg != "" {
		rep.Token.Masked = ""
		rep.add(Problem{Code: CodeTokenFormatInvalid, Severity: SeverityError,
			Message: msg + " Nothing was sent to Buildkite.", Remedy: remedyValidToken})
		return rep
	}
	if kind, ok := WrongTokenKind(tok); ok {
		rep.add(Problem{Code: CodeWrongTokenType, Severity: SeverityError,
			Message: fmt.Sprintf("This is a Buildkite %s (it starts with %s), which cannot call the REST API. kitewatch needs an API access token (starting with %s). Nothing was sent to Buildkite.", kind.Name, kind.Prefix, APITokenPrefix),
			Remedy:  remedyAPIToken,
			Data:    map[string]any{"token_kind": kind.Name, "prefix": kind.Prefix}})
		return rep
	}

	hc := opts.HTTPClient
	client, err := NewClient(baseURL, token, WithHTTPClient(hc), WithTimeout(opts.Timeout))
	if err != nil {
		rep.add(Problem{Code: CodeBuildkiteUnreachable, Severity: SeverityError,
			Message: "The Buildkite API URL is not usable: " + err.Error(), Remedy: remedyReachable,
			Data: map[string]any{"reason": "bad_url"}})
		return rep
	}

	var (
		wg    sync.WaitGroup
		at    result[TokenInfo]
		user  result[User]
		orgs  result[[]OrgRef]
		probe result[struct{}]
	)
	run := func(fn func()) { wg.Add(1); go func() { defer wg.Done(); fn() }() }
	run(func() { at.v, at.err = client.AccessToken(ctx); at.ran = true })
	run(func() { user.v, user.err = client.CurrentUser(ctx); user.ran = true })
	run(func() { orgs.v, orgs.err = client.Organizations(ctx); orgs.ran = true })
	rep.APICalls = 3
	if opts.Organization != "" {
		run(func() { probe.err = client.ProbeOrganization(ctx, opts.Organization); probe.ran = true })
		rep.APICalls++
	}
	wg.Wait()

	v := verifier{rep: &rep, now: now().UTC(), opts: opts, timeout: opts.Timeout, baseURL: client.BaseURL()}
	if !v.token(at.v, at.err) {
		return rep
	}
	v.user(user.v, user.err)
	v.orgs(orgs.v, orgs.err)

	// Choose the organization.
	slug := opts.Organization
	if slug == "" && orgs.err == nil {
		switch len(orgs.v) {
		case 0:
			rep.add(Problem{Code: CodeNoOrganizationAccess, Severity: SeverityError,
				Message: "The token does not reach any Buildkite organization.",
				Remedy:  remedyOrgAccess, Data: map[string]any{"organizations": []string{}}})
		case 1:
			slug = orgs.v[0].Slug
		default:
			rep.add(Problem{Code: CodeOrganizationRequired, Severity: SeverityError,
				Message: fmt.Sprintf("The token reaches %d Buildkite organizations (%s) and none was chosen.", len(orgs.v), strings.Join(slugs(orgs.v), ", ")),
				Remedy:  remedyChooseOrg, Data: map[string]any{"organizations": slugs(orgs.v)}})
		}
		if slug != "" && ctx.Err() == nil {
			probe.err = client.ProbeOrganization(ctx, slug)
			probe.ran = true
			rep.APICalls++
		}
	}
	if slug != "" {
		v.organization(slug, orgs, probe)
	}
	return rep
}

func slugs(orgs []OrgRef) []string {
	s := make([]string, len(orgs))
	for i, o := range orgs {
		s[i] = o.Slug
	}
	return s
}

// verifier turns call results into report facts and problems.
type verifier struct {
	rep     *Report
	now     time.Time
	opts    VerifyOptions
	timeout time.Duration
	baseURL string
}

// token records the access-token facts; it returns false when nothing else
// can be judged (the token was refused or Buildkite did not answer).
func (v verifier) token(info TokenInfo, err error) bool {
	rep := v.rep
	if err != nil {
		switch {
		case isTransport(err):
			v.transportProblem(err)
		case IsUnauthorized(err):
			switch {
			case v.opts.ExpiresAt != nil && !v.opts.ExpiresAt.After(v.now):
				rep.add(v.expired(*v.opts.ExpiresAt))
			case v.opts.PreviouslyVerified:
				rep.add(Problem{Code: CodeTokenRevoked, Severity: SeverityError,
					Message: "Buildkite no longer accepts this token (401), although it verified before: it was revoked or deleted.",
					Remedy:  remedyNewToken, Data: map[string]any{"status": 401}})
			default:
				rep.add(Problem{Code: CodeTokenInvalid, Severity: SeverityError,
					Message: "Buildkite does not accept this token (401 Authentication required): it is mistyped, incomplete, expired, revoked or from another Buildkite account.",
					Remedy:  remedyValidToken, Data: map[string]any{"status": 401}})
			}
		case IsForbidden(err):
			// /v2/access-token needs no scope, so a 403 can only be an
			// access restriction such as the organization's IP allowlist.
			rep.add(v.ipNotAllowed(err))
		case statusOf(err) != 0:
			rep.add(v.unreachable(&UnreachableError{Reason: ReasonBadResponse, Err: err}))
		default:
			v.transportProblem(err)
		}
		return false
	}

	facts := &rep.Token
	facts.UUID, facts.Description = info.UUID, info.Description
	facts.OwnerName, facts.OwnerEmail = info.OwnerName, info.OwnerEmail
	facts.CreatedAt, facts.ExpiresAt = info.CreatedAt, info.ExpiresAt
	facts.Scopes = slices.Clone(info.Scopes)
	if facts.Scopes == nil {
		facts.Scopes = []string{}
	}
	facts.MissingScopes, facts.ExtraScopes = []string{}, []string{}
	for _, s := range RequiredScopeNames() {
		if !slices.Contains(info.Scopes, s) {
			facts.MissingScopes = append(facts.MissingScopes, s)
		}
	}
	var excess []string
	for _, s := range info.Scopes {
		if slices.Contains(RequiredScopeNames(), s) {
			continue
		}
		facts.ExtraScopes = append(facts.ExtraScopes, s)
		if !strings.HasPrefix(s, "read_") {
			excess = append(excess, s)
		}
	}

	if info.ExpiresAt != nil {
		if !info.ExpiresAt.After(v.now) {
			rep.add(v.expired(*info.ExpiresAt))
		} else if left := info.ExpiresAt.Sub(v.now); left < ExpiringSoon {
			rep.add(Problem{Code: CodeTokenExpiringSoon, Severity: SeverityWarning,
				Message: fmt.Sprintf("The token expires on %s, in %s.", info.ExpiresAt.Format("2006-01-02 15:04 MST"), humanDuration(left)),
				Remedy:  remedyExpiring, Data: map[string]any{"expires_at": *info.ExpiresAt}})
		}
	}
	if len(facts.MissingScopes) > 0 {
		rep.add(Problem{Code: CodeMissingScopes, Severity: SeverityError,
			Message: fmt.Sprintf("The token lacks %d of the 9 scopes kitewatch needs: %s.", len(facts.MissingScopes), strings.Join(facts.MissingScopes, ", ")),
			Remedy:  remedyScopes, Data: map[string]any{"missing_scopes": slices.Clone(facts.MissingScopes)}})
	}
	if len(excess) > 0 {
		rep.add(Problem{Code: CodeExcessScopes, Severity: SeverityWarning,
			Message: fmt.Sprintf("The token can do more than kitewatch needs: %s. kitewatch only reads.", strings.Join(excess, ", ")),
			Remedy:  remedyLeastPriv, Data: map[string]any{"excess_scopes": excess}})
	}
	return true
}

func (v verifier) expired(at time.Time) Problem {
	return Problem{Code: CodeTokenExpired, Severity: SeverityError,
		Message: fmt.Sprintf("The token expired on %s.", at.UTC().Format("2006-01-02 15:04 MST")),
		Remedy:  remedyNotExpired, Data: map[string]any{"expires_at": at.UTC()}}
}

func (v verifier) ipNotAllowed(err error) Problem {
	return Problem{Code: CodeIPNotAllowed, Severity: SeverityError,
		Message: "Buildkite refused the request with 403 Forbidden although the call needs no scope: the organization's API IP allowlist probably does not include kitewatch's address.",
		Remedy:  remedyIP, Data: map[string]any{"status": statusOf(err)}}
}

// hasScope reports whether the token is known to hold scope.
func (v verifier) hasScope(scope string) bool { return slices.Contains(v.rep.Token.Scopes, scope) }

// otherFailure reports a failed call that is not explained by a missing
// scope already listed.
func (v verifier) otherFailure(err error, scope string) {
	var ae *APIError
	switch {
	case err == nil:
	case isTransport(err):
		v.transportProblem(err)
	case IsForbidden(err) && errors.As(err, &ae) && ae.MissingScope() != "":
		if !v.hasScope(ae.MissingScope()) {
			return // already in missing_scopes
		}
		v.rep.add(Problem{Code: CodeMissingScopes, Severity: SeverityError,
			Message: fmt.Sprintf("Buildkite says the token lacks the %s scope.", ae.MissingScope()),
			Remedy:  remedyScopes, Data: map[string]any{"missing_scopes": []string{ae.MissingScope()}}})
	case IsForbidden(err):
		if !v.hasScope(scope) {
			return
		}
		v.rep.add(v.ipNotAllowed(err))
	case IsUnauthorized(err):
		v.rep.add(Problem{Code: CodeTokenRevoked, Severity: SeverityError,
			Message: "Buildkite stopped accepting the token (401) during the check: it was revoked.",
			Remedy:  remedyNewToken, Data: map[string]any{"status": 401}})
	case statusOf(err) != 0 && !IsNotFound(err):
		v.rep.add(v.unreachable(&UnreachableError{Reason: ReasonBadResponse, Err: err}))
	case statusOf(err) == 0:
		v.transportProblem(err)
	}
}

func (v verifier) user(u User, err error) {
	if err != nil {
		v.otherFailure(err, "read_user")
		return
	}
	if v.rep.Token.OwnerName == "" {
		v.rep.Token.OwnerName = u.Name
	}
	if v.rep.Token.OwnerEmail == "" {
		v.rep.Token.OwnerEmail = u.Email
	}
}

func (v verifier) orgs(orgs []OrgRef, err error) {
	if err != nil {
		v.otherFailure(err, "read_organizations")
		return
	}
	v.rep.Organizations = orgs
}

func (v verifier) organization(slug string, orgs result[[]OrgRef], probe result[struct{}]) {
	rep := v.rep
	var listed *OrgRef
	for i := range orgs.v {
		if orgs.v[i].Slug == slug {
			listed = &orgs.v[i]
		}
	}
	noAccess := func(msg string) {
		data := map[string]any{"organization": slug}
		if orgs.err == nil {
			data["organizations"] = slugs(orgs.v)
		}
		for _, o := range orgs.v {
			if strings.EqualFold(o.Slug, slug) && o.Slug != slug {
				msg += fmt.Sprintf(" Slugs are case-sensitive: did you mean %q?", o.Slug)
			}
		}
		rep.add(Problem{Code: CodeNoOrganizationAccess, Severity: SeverityError,
			Message: msg, Remedy: remedyOrgAccess, Data: data})
	}
	switch {
	case probe.ran && probe.err == nil:
		rep.Organization = OrgRef{Slug: slug}
		if listed != nil {
			rep.Organization = *listed
		}
	case probe.ran && IsNotFound(probe.err):
		noAccess(fmt.Sprintf("The token cannot see the Buildkite organization %q (404 No organization found).", slug))
	case orgs.err == nil && listed == nil:
		noAccess(fmt.Sprintf("The Buildkite organization %q is not among the organizations the token reaches (%s).", slug, strings.Join(slugs(orgs.v), ", ")))
	default:
		if listed != nil {
			rep.Organization = *listed
		}
		if probe.ran {
			v.otherFailure(probe.err, "read_pipelines")
		}
	}
}

// isTransport reports whether err means no usable answer arrived.
func isTransport(err error) bool {
	var rl *RateLimitError
	var ue *UnreachableError
	return errors.As(err, &rl) || errors.As(err, &ue) || statusOf(err) == 0
}

// transportProblem reports a call that got no usable answer.
func (v verifier) transportProblem(err error) {
	var rl *RateLimitError
	var ue *UnreachableError
	switch {
	case errors.As(err, &rl):
		msg := fmt.Sprintf("Buildkite's API rate limit is exhausted; it resets at %s.", rl.Reset.UTC().Format("15:04:05 MST"))
		if rl.Scope == "rest_user" {
			msg = fmt.Sprintf("The token's user has exhausted its per-user API rate limit; it resets at %s.", rl.Reset.UTC().Format("15:04:05 MST"))
		}
		data := map[string]any{"reset_at": rl.Reset.UTC()}
		if rl.Scope != "" {
			data["scope"] = rl.Scope
		}
		v.rep.add(Problem{Code: CodeRateLimited, Severity: SeverityError, Message: msg, Remedy: remedyRateLimited, Data: data})
	case errors.As(err, &ue):
		v.rep.add(v.unreachable(ue))
	case errors.Is(err, context.Canceled):
		v.rep.add(v.unreachable(&UnreachableError{Reason: ReasonTimeout, Err: err}))
	default:
		v.rep.add(v.unreachable(&UnreachableError{Reason: ReasonConnect, Err: err}))
	}
}

func (v verifier) unreachable(ue *UnreachableError) Problem {
	host := v.baseURL
	var msg string
	switch ue.Reason {
	case ReasonDNS:
		msg = fmt.Sprintf("Could not reach Buildkite at %s: the host name did not resolve (DNS).", host)
	case ReasonConnect:
		msg = fmt.Sprintf("Could not reach Buildkite at %s: the connection was refused or failed.", host)
	case ReasonTLS:
		msg = fmt.Sprintf("Could not reach Buildkite at %s: the TLS connection failed (certificate or handshake); a proxy may be intercepting TLS.", host)
	case ReasonTimeout:
		msg = fmt.Sprintf("Could not reach Buildkite at %s: the request timed out after %s.", host, v.timeout)
		if errors.Is(ue.Err, context.Canceled) {
			msg = fmt.Sprintf("The check of Buildkite at %s was cancelled before it answered.", host)
		}
	case ReasonServerError:
		msg = fmt.Sprintf("Buildkite at %s answered with a server error (HTTP %d); it may be having an incident.", host, statusOf(ue.Err))
	default:
		msg = fmt.Sprintf("Buildkite at %s gave an unexpected answer (HTTP %d); check that the API URL points at the Buildkite REST API.", host, statusOf(ue.Err))
	}
	data := map[string]any{"reason": ue.Reason}
	if s := statusOf(ue.Err); s != 0 {
		data["status"] = s
	}
	return Problem{Code: CodeBuildkiteUnreachable, Severity: SeverityError, Message: msg, Remedy: remedyReachable, Data: data}
}

// humanDuration renders d in days or hours.
func humanDuration(d time.Duration) string {
	switch days := int(d.Hours() / 24); {
	case days >= 2:
		return fmt.Sprintf("%d days", days)
	case d >= time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	default:
		return "less than an hour"
	}
}
