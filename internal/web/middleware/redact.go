package middleware

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
)

// Redacted replaces secret values in logs.
const Redacted = "[REDACTED]"

// secretKeyWords mark attribute keys whose values are masked.
var secretKeyWords = []string{
	"password", "passwd", "token", "secret", "authorization", "cookie",
	"api_key", "apikey", "credential", "private_key",
}

// secretValue matches secrets inside free text: bearer credentials and
// kitewatch-shaped tokens.
var secretValue = regexp.MustCompile(`(?i:bearer|basic)\s+[^\s"',;]+|\b[a-z0-9]{1,16}_[a-z0-9]{20,}\b`)

// RedactingHandler is a slog.Handler that masks secrets before passing
// records on: values whose key looks secret (password, token, secret,
// authorization, cookie, api_key and the like, in any group, any case) become
// "[REDACTED]", and bearer credentials or kitewatch tokens inside other
// string values, error texts and the message are masked. It is defence in
// depth: code should not log secrets in the first place.
type RedactingHandler struct {
	next slog.Handler
}

// NewRedactingHandler wraps next.
func NewRedactingHandler(next slog.Handler) *RedactingHandler {
	return &RedactingHandler{next: next}
}

// Enabled reports whether the wrapped handler handles level.
func (h *RedactingHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle masks the record's message and attributes and passes it on.
func (h *RedactingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, scrubString(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs masks attrs before they are preformatted by the wrapped handler.
func (h *RedactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = redactAttr(a)
	}
	return &RedactingHandler{next: h.next.WithAttrs(red)}
}

// WithGroup opens a group in the wrapped handler.
func (h *RedactingHandler) WithGroup(name string) slog.Handler {
	return &RedactingHandler{next: h.next.WithGroup(name)}
}

func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, w := range secretKeyWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if secretKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	switch v.Kind() {
	case slog.KindGroup:
		group := v.Group()
		red := make([]slog.Attr, len(group))
		for i, g := range group {
			red[i] = redactAttr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(red...)}
	case slog.KindString:
		return slog.String(a.Key, scrubString(v.String()))
	case slog.KindAny:
		if err, ok := v.Any().(error); ok && err != nil {
			if s := err.Error(); s != scrubString(s) {
				return slog.String(a.Key, scrubString(s))
			}
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func scrubString(s string) string {
	if !strings.Contains(s, "_") {
		if l := strings.ToLower(s); !strings.Contains(l, "bearer") && !strings.Contains(l, "basic") {
			return s
		}
	}
	return secretValue.ReplaceAllStringFunc(s, func(m string) string {
		if sp := strings.IndexAny(m, " \t\r\n"); sp > 0 {
			if scheme := m[:sp]; strings.EqualFold(scheme, "bearer") || strings.EqualFold(scheme, "basic") {
				return scheme + " " + Redacted
			}
		}
		if i := strings.IndexByte(m, '_'); i > 0 && looksLikeToken(m) {
			return m[:i+1] + Redacted
		}
		return m
	})
}
