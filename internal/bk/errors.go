package bk

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// APIError is a non-2xx answer from the Buildkite API (other than 429, which
// is a *RateLimitError). Message is Buildkite's "message" field.
type APIError struct {
	Method  string
	Path    string // request path without query
	Status  int
	Message string
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("buildkite %s %s: %d %s", e.Method, e.Path, e.Status, msg)
}

var missingScopeRE = regexp.MustCompile(`doesn.t have the ([a-z_]+) scope`)

// MissingScope returns the scope named by a 403 "Your access token doesn't
// have the X scope" answer, or "".
func (e *APIError) MissingScope() string {
	if e.Status != http.StatusForbidden {
		return ""
	}
	if m := missingScopeRE.FindStringSubmatch(e.Message); m != nil {
		return m[1]
	}
	return ""
}

// statusOf returns the HTTP status of an *APIError in err's chain, or 0.
func statusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// IsUnauthorized reports whether err is a 401 answer: the token is missing,
// invalid, expired or revoked.
func IsUnauthorized(err error) bool { return statusOf(err) == http.StatusUnauthorized }

// IsForbidden reports whether err is a 403 answer (a missing scope, a
// permission or an IP allowlist).
func IsForbidden(err error) bool { return statusOf(err) == http.StatusForbidden }

// IsNotFound reports whether err is a 404 answer (unknown object, or an
// organization or pipeline the token cannot see).
func IsNotFound(err error) bool { return statusOf(err) == http.StatusNotFound }

// IsRateLimited reports whether err is a *RateLimitError.
func IsRateLimited(err error) bool {
	var rl *RateLimitError
	return errors.As(err, &rl)
}

// RateLimitError is a 429 answer. go-buildkite never sees it, so it does not
// retry; the caller decides whether to wait until Reset.
type RateLimitError struct {
	Reset   time.Time // when the exhausted window resets
	Scope   string    // "rest" (organization) or "rest_user" (per user), if known
	Limit   int       // requests allowed per window, if known
	Current int       // requests made in the window, if known
	Message string    // Buildkite's message
}

func (e *RateLimitError) Error() string {
	scope := ""
	if e.Scope != "" {
		scope = " (" + e.Scope + ")"
	}
	return fmt.Sprintf("buildkite rate limit exceeded%s; resets at %s", scope, e.Reset.UTC().Format(time.RFC3339))
}

// Unreachable reasons, for UnreachableError.Reason.
const (
	ReasonDNS         = "dns"          // the host name did not resolve
	ReasonConnect     = "connect"      // the connection was refused or failed
	ReasonTLS         = "tls"          // the TLS handshake or certificate failed
	ReasonTimeout     = "timeout"      // no answer before the deadline
	ReasonServerError = "server_error" // Buildkite answered 5xx
	ReasonBadResponse = "bad_response" // the answer was not what the API sends
)

// UnreachableError means the request did not get a usable answer from
// Buildkite. Reason is one of the Reason constants.
type UnreachableError struct {
	Reason string
	Err    error
}

func (e *UnreachableError) Error() string {
	return "buildkite unreachable (" + e.Reason + "): " + e.Err.Error()
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// classifyTransport turns a failed round trip into an *UnreachableError with
// the most specific reason, leaving rate limits and API errors alone. The
// caller's own cancellation is returned unchanged.
func classifyTransport(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var rl *RateLimitError
	var ae *APIError
	var ue *UnreachableError
	if errors.As(err, &rl) || errors.As(err, &ae) || errors.As(err, &ue) {
		return err
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return err
	}
	reason := ReasonConnect
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var recErr tls.RecordHeaderError
	var alert tls.AlertError
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		reason = ReasonTimeout
	case errors.As(err, &dnsErr):
		reason = ReasonDNS
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr),
		errors.As(err, &invalid), errors.As(err, &recErr), errors.As(err, &alert),
		strings.Contains(err.Error(), "tls: "):
		reason = ReasonTLS
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		reason = ReasonConnect
	}
	return &UnreachableError{Reason: reason, Err: err}
}

// redactedError replaces an error whose text contained the token. It keeps
// the classification but not the chain, so the token cannot be reached.
type redactedError struct{ msg string }

func (e *redactedError) Error() string { return e.msg }

// scrub returns err unchanged unless its text contains token, in which case
// it returns an error with the token replaced. This is a last line of
// defence: no known path puts the token in an error.
func scrub(err error, token string) error {
	if err == nil || token == "" || !strings.Contains(err.Error(), token) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), token, "[REDACTED]")}
}
