package secrets

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
)

// Redacted is what a Secret prints instead of its value.
const Redacted = "[REDACTED]"

// Secret holds a sensitive string, such as an API token. Every way of
// printing or encoding it (fmt with any verb, slog, encoding/json,
// encoding.TextMarshaler) produces "[REDACTED]"; only Reveal returns the
// value. The value sits behind a pointer, so even reflection-based printers
// that bypass methods (fmt on an unexported field) print an address, not the
// secret. The zero Secret is empty. Secrets compare equal with == only if they
// are copies of the same Secret; compare Reveal() values instead.
type Secret struct {
	v *string
}

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{v: &s} }

// Reveal returns the secret value. Call it only where the value must leave
// the process (an Authorization header, a cipher).
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

// String returns "[REDACTED]".
func (s Secret) String() string { return Redacted }

// GoString returns "[REDACTED]", for %#v.
func (s Secret) GoString() string { return Redacted }

// Format prints "[REDACTED]" for every verb and flag.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue makes slog print "[REDACTED]".
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON encodes the secret as the JSON string "[REDACTED]".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText returns "[REDACTED]".
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// UnmarshalJSON reads a JSON string (or null) into the secret, so request
// bodies can decode straight into a Secret. Errors never contain the input.
func (s *Secret) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = Secret{}
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("secret must be a JSON string")
	}
	*s = NewSecret(v)
	return nil
}

// UnmarshalText sets the secret from text (flags, environment).
func (s *Secret) UnmarshalText(b []byte) error {
	*s = NewSecret(string(b))
	return nil
}

// knownPrefixes are token prefixes that identify a token's kind and carry no
// secret; longer prefixes come first so "bkpat_" wins over shorter ones.
var knownPrefixes = []string{
	"bkpat_", "bkua_", "bktx_", "bkct_", "bkar_", "bkaa_", "bkaj_", "bkpt_", "bkps_", "kw_",
}

// Mask returns a form of token that is safe to show and store: its known
// prefix (such as "bkua_"), an ellipsis and its last 4 characters, for
// example "bkua_…9f3c". At most 4 characters of the secret part are shown,
// and none when the secret part is shorter than 12 characters. An empty token
// masks to "".
func Mask(token string) string {
	if token == "" {
		return ""
	}
	prefix := ""
	for _, p := range knownPrefixes {
		if strings.HasPrefix(token, p) {
			prefix = p
			break
		}
	}
	rest := []rune(token[len(prefix):])
	if len(rest) < 12 {
		return prefix + "…"
	}
	return prefix + "…" + string(rest[len(rest)-4:])
}
