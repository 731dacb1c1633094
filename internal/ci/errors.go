package ci

import (
	"errors"
	"fmt"
)

// Error kinds that callers branch on. Wrap them with fmt.Errorf("...: %w", ErrX)
// or use Errorf to attach a safe, user-facing message.
var (
	// ErrNotFound means the object does not exist or is not visible to the caller.
	// Objects of another organization are reported as not found.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the object already exists or the change clashes with current state.
	ErrConflict = errors.New("conflict")
	// ErrInvalid means the input failed validation.
	ErrInvalid = errors.New("invalid input")
	// ErrUnauthenticated means no valid credentials were presented.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden means the caller is known but lacks the role for the action.
	ErrForbidden = errors.New("forbidden")
	// ErrRateLimited means the caller must slow down.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: a service kitewatch depends on (its key service) is
	// not answering; nothing was changed and a retry may succeed.
	ErrUnavailable = errors.New("unavailable")
)

// Error is an error with a kind (one of the sentinels above), a stable machine
// code and a message that is safe to show to the user. Internal details belong
// in Err, which is logged but never rendered.
type Error struct {
	Kind    error
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap lets errors.Is match both the kind and the wrapped cause.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// Errorf returns an *Error of the given kind and code with a formatted safe message.
func Errorf(kind error, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}
