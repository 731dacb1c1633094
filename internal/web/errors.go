package web

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/web/middleware"
)

// apiError is the JSON error body: {"error": {"code": "...", "message": "..."}}.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// errorStatus maps an error to its HTTP status, code and safe message. It is
// the one place where error kinds become statuses; internal details are
// never part of the message.
func errorStatus(err error) (status int, code, msg string) {
	var ce *ci.Error
	safe := ""
	if errors.As(err, &ce) {
		code, safe = ce.Code, ce.Message
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case middleware.IsBodyTooLarge(err):
		return http.StatusRequestEntityTooLarge, "body_too_large", "the request body is too large"
	case errors.As(err, &syn), errors.As(err, &typ), errors.Is(err, errMalformed):
		// decodeJSON's messages say what is wrong without echoing values.
		return http.StatusBadRequest, "malformed_request", or(safe, "the request body is not valid JSON of the expected shape")
	case errors.Is(err, ci.ErrNotFound):
		return http.StatusNotFound, or(code, "not_found"), or(safe, "not found")
	case errors.Is(err, ci.ErrUnauthenticated):
		return http.StatusUnauthorized, or(code, "unauthenticated"), or(safe, "sign in or send an API token: Authorization: Bearer kw_...")
	case errors.Is(err, ci.ErrForbidden):
		return http.StatusForbidden, or(code, "forbidden"), or(safe, "you do not have permission to do this")
	case errors.Is(err, ci.ErrConflict):
		return http.StatusConflict, or(code, "conflict"), or(safe, "this conflicts with the current state")
	case errors.Is(err, ci.ErrInvalid):
		return http.StatusUnprocessableEntity, or(code, "invalid"), or(safe, "the request is not valid")
	case errors.Is(err, ci.ErrRateLimited):
		return http.StatusTooManyRequests, or(code, "rate_limited"), or(safe, "too many requests: try again later")
	case errors.Is(err, ci.ErrUnavailable):
		return http.StatusServiceUnavailable, or(code, "unavailable"), or(safe, "a service kitewatch depends on is not answering: try again shortly")
	}
	return http.StatusInternalServerError, "internal", "internal server error"
}

var errMalformed = errors.New("malformed request")

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// writeError answers an API request with the JSON error body, logging
// internal failures (never with request bodies or headers).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := errorStatus(err)
	if status >= 500 {
		s.logger.ErrorContext(r.Context(), "request failed", slog.String("route", r.Pattern),
			slog.String("request_id", middleware.RequestIDFrom(r.Context())), slog.Any("error", err))
	}
	var body apiError
	body.Error.Code, body.Error.Message = code, msg
	if ra := retryAfter(err); ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	writeJSON(w, status, body)
}

// retryAfterError carries a Retry-After value in seconds.
type retryAfterError struct {
	err     error
	seconds string
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

func retryAfter(err error) string {
	var ra *retryAfterError
	if errors.As(err, &ra) {
		return ra.seconds
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// decodeJSON reads a JSON body strictly: one object, no unknown fields.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &ci.Error{Kind: errMalformed, Code: "malformed_request", Message: "send Content-Type: application/json"}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if middleware.IsBodyTooLarge(err) {
			return err
		}
		return &ci.Error{Kind: errMalformed, Code: "malformed_request", Message: "the request body is not valid JSON of the expected shape: " + jsonProblem(err)}
	}
	if dec.More() {
		return &ci.Error{Kind: errMalformed, Code: "malformed_request", Message: "the request body has data after the JSON object"}
	}
	return nil
}

// jsonProblem describes a JSON decoding error without echoing input values.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return "syntax error"
	case errors.As(err, &typ):
		return "field " + typ.Field + " has the wrong type"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	case errors.Is(err, io.EOF):
		return "empty body"
	}
	return "cannot decode"
}
