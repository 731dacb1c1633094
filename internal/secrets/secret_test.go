package secrets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const testToken = "bkua_0123456789abcdefSECRETabcdef0123459f3c"

func TestSecretNeverPrints(t *testing.T) {
	s := NewSecret(testToken)
	type holder struct {
		Exported   Secret
		unexported Secret
		Ptr        *Secret
	}
	h := holder{Exported: s, unexported: s, Ptr: &s}

	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v", "%10s", "%-20v", "%.3s", "%p", "%t", "%o", "%e", "%U", "%c"}
	for _, verb := range verbs {
		for _, arg := range []any{s, &s, h, &h, []Secret{s}, map[string]Secret{"k": s}} {
			out := fmt.Sprintf(verb, arg)
			if strings.Contains(out, "SECRET") || strings.Contains(out, "0123456789") {
				t.Errorf("Sprintf(%q, %T) = %q leaks the secret", verb, arg, out)
			}
		}
	}
	if got := fmt.Sprint(s); got != Redacted {
		t.Errorf("Sprint = %q, want %q", got, Redacted)
	}
	if got := s.String() + s.GoString(); got != Redacted+Redacted {
		t.Errorf("String+GoString = %q", got)
	}

	var buf bytes.Buffer
	for _, handler := range []slog.Handler{
		slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
	} {
		l := slog.New(handler)
		l.Debug("token", "token", s, "ptr", &s, "holder", h, slog.Any("any", s), slog.Group("g", "t", s))
		l.With("token", s).Info("with")
	}
	if out := buf.String(); strings.Contains(out, "SECRET") || !strings.Contains(out, Redacted) {
		t.Errorf("slog output leaks or lacks redaction:\n%s", out)
	}

	js, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(js), "SECRET") || !strings.Contains(string(js), Redacted) {
		t.Errorf("json = %s", js)
	}
	js, _ = json.Marshal(map[string]any{"t": s, "m": map[Secret]int{s: 1}})
	if strings.Contains(string(js), "SECRET") {
		t.Errorf("json map = %s", js)
	}

	if got := s.Reveal(); got != testToken {
		t.Errorf("Reveal = %q", got)
	}
}

func TestSecretUnmarshal(t *testing.T) {
	var req struct {
		Token Secret `json:"token"`
	}
	if err := json.Unmarshal([]byte(`{"token":"bkua_abc"}`), &req); err != nil {
		t.Fatal(err)
	}
	if req.Token.Reveal() != "bkua_abc" {
		t.Fatalf("Reveal = %q", req.Token.Reveal())
	}
	err := json.Unmarshal([]byte(`{"token":12345678}`), &req)
	if err == nil || strings.Contains(err.Error(), "12345678") {
		t.Fatalf("non-string token: err = %v", err)
	}
	var zero Secret
	if !zero.IsZero() || zero.Reveal() != "" || fmt.Sprint(zero) != Redacted {
		t.Fatal("zero Secret misbehaves")
	}
}

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"bkua_0123456789abcdef0123456789abcdef01239f3c", "bkua_…9f3c"},
		{"bkpat_0123456789abcdefabcd", "bkpat_…abcd"},
		{"0123456789abcdef0123456789abcdef0123abcd", "…abcd"},
		{"bkua_short", "bkua_…"},
		{"bkua_", "bkua_…"},
		{"tiny", "…"},
	}
	for _, tc := range tests {
		if got := Mask(tc.in); got != tc.want {
			t.Errorf("Mask(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
