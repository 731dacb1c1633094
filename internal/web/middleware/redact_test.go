package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

type secretValuer struct{ v string }

func (s secretValuer) LogValue() slog.Value { return slog.StringValue(s.v) }

func TestRedactingHandler(t *testing.T) {
	tests := []struct {
		name   string
		log    func(l *slog.Logger)
		secret string
		want   string // must appear
	}{
		{"password key", func(l *slog.Logger) { l.Info("x", "password", "hunter2hunter2") }, "hunter2hunter2", `"password":"[REDACTED]"`},
		{"key case and compound", func(l *slog.Logger) { l.Info("x", "New_Password", "hunter3hunter3") }, "hunter3hunter3", `"New_Password":"[REDACTED]"`},
		{"token non-string", func(l *slog.Logger) { l.Info("x", "token", []byte("rawbytes-secret")) }, "rawbytes-secret", `"token":"[REDACTED]"`},
		{"authorization", func(l *slog.Logger) { l.Info("x", "Authorization", "Bearer abc") }, "abc", `"Authorization":"[REDACTED]"`},
		{"cookie", func(l *slog.Logger) { l.Info("x", "cookie", "kitewatch_session=zzz") }, "zzz", `"cookie":"[REDACTED]"`},
		{"api_key", func(l *slog.Logger) { l.Info("x", "api_key", "k-123-456") }, "k-123-456", `"api_key":"[REDACTED]"`},
		{"client_secret", func(l *slog.Logger) { l.Info("x", "client_secret", "cs-999") }, "cs-999", `"client_secret":"[REDACTED]"`},
		{"nested group", func(l *slog.Logger) {
			l.Info("x", slog.Group("req", slog.String("path", "/a"), slog.Group("hdr", slog.String("cookie", "nestedsecret"))))
		}, "nestedsecret", `"path":"/a"`},
		{"with attrs", func(l *slog.Logger) { l.With("secret", "withsecret").Info("x") }, "withsecret", `"secret":"[REDACTED]"`},
		{"with group", func(l *slog.Logger) { l.WithGroup("g").Info("x", "password", "grouppw") }, "grouppw", `"g":{"password":"[REDACTED]"}`},
		{"log valuer", func(l *slog.Logger) { l.Info("x", "password", secretValuer{"valuerpw"}) }, "valuerpw", `[REDACTED]`},
		{"token in value", func(l *slog.Logger) { l.Info("x", "detail", "sent "+secretToken+" to api") }, secretToken, `kw_[REDACTED]`},
		{"bearer in value", func(l *slog.Logger) { l.Info("x", "header", "Bearer opaque.jwt.value") }, "opaque.jwt.value", `Bearer [REDACTED]`},
		{"token in error", func(l *slog.Logger) { l.Info("x", "err", fmt.Errorf("verify %s: %w", secretToken, errors.New("bad"))) }, secretToken, `kw_[REDACTED]`},
		{"token in message", func(l *slog.Logger) { l.Info("using " + secretToken) }, secretToken, `using kw_[REDACTED]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf syncBuffer
			l := slog.New(NewRedactingHandler(slog.NewJSONHandler(&buf, nil)))
			tt.log(l)
			out := buf.String()
			if strings.Contains(out, tt.secret) {
				t.Errorf("output contains %q: %s", tt.secret, out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("output lacks %q: %s", tt.want, out)
			}
		})
	}
}

func TestRedactingHandlerKeepsOrdinaryValues(t *testing.T) {
	var buf syncBuffer
	l := slog.New(NewRedactingHandler(slog.NewTextHandler(&buf, nil)))
	l.Info("http request", "route", "GET /api/v1/orgs/{org}", "status", 200, "user_id", 7, "err", errors.New("no rows"))
	out := buf.String()
	for _, want := range []string{`route="GET /api/v1/orgs/{org}"`, "status=200", "user_id=7", `err="no rows"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q: %s", want, out)
		}
	}
	if !l.Enabled(t.Context(), slog.LevelInfo) || l.Enabled(t.Context(), slog.LevelDebug) {
		t.Error("Enabled does not follow the wrapped handler")
	}
}

func TestSafePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/api/v1/orgs/acme", "/api/v1/orgs/acme"},
		{"/setup/" + secretSetup, "/setup/[REDACTED]"},
		{"/a/" + secretToken + "/b", "/a/[REDACTED]/b"},
		{"/snake_case/path_name", "/snake_case/path_name"},
		{"/" + strings.Repeat("a", 300), "/" + strings.Repeat("a", 255) + "…"},
	}
	for _, tt := range tests {
		if got := SafePath(tt.in); got != tt.want {
			t.Errorf("SafePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
