package redact

import (
	"slices"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	r := New("s3cr3t-value-from-env", "short", "true")
	tests := []struct {
		name, in, want string
	}{
		{"buildkite token", "token bkua_0123456789abcdef0123456789abcdef01234567 used", "token [REDACTED] used"},
		{"agent job token", "BUILDKITE_AGENT_ACCESS_TOKEN=bkaj_abcdefghijklmnopqrstuvwxyz", "BUILDKITE_AGENT_ACCESS_TOKEN=[REDACTED]"},
		{"github classic", "using ghp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", "using [REDACTED]"},
		{"github server", "ghs_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", "[REDACTED]"},
		{"github fine grained", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "[REDACTED]"},
		{"aws key id", "aws_access_key_id AKIAIOSFODNN7EXAMPLE here", "aws_access_key_id [REDACTED] here"},
		{"slack", "hook xoxb-123456789012-abcdefghijkl", "hook [REDACTED]"},
		{"npm", "//registry.npmjs.org/:_authToken=npm_abcdefghijklmnopqrstuvwxyz0123456789", "//registry.npmjs.org/:_authToken=[REDACTED]"},
		{"jwt", "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U ok", "jwt [REDACTED] ok"},
		{"bearer", "curl -H 'Authorization: Bearer abcdef0123456789' https://x", "curl -H 'Authorization: Bearer [REDACTED]' https://x"},
		{"bearer alone", "sending bearer abcdefghijk123", "sending bearer [REDACTED]"},
		{"url credentials", "git clone https://deploy:hunter2pass@github.com/acme/app.git", "git clone https://[REDACTED]github.com/acme/app.git"},
		{"url token user", "https://x-access-token:ghs_abc@github.com/a/b", "https://[REDACTED]github.com/a/b"},
		{"key=value", "export DATABASE_PASSWORD=correct-horse-battery", "export DATABASE_PASSWORD=[REDACTED]"},
		{"yaml secret", "  client_secret: abcdef123456", "  client_secret: [REDACTED]"},
		{"json api key", `{"api_key": "0123456789abcdef"}`, `{"api_key": "[REDACTED]"}`},
		{"password flag", "mysql --password hunter22 -u root", "mysql --password [REDACTED] -u root"},
		{"token flag equals", "tool --api-token=abcdefgh123", "tool --api-token=[REDACTED]"},
		{"explicit value", "connecting with s3cr3t-value-from-env now", "connecting with [REDACTED] now"},
		{"short explicit value ignored", "a short story is true", "a short story is true"},
		{"private key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "[REDACTED]"},
		{"prose stays", "failed to compute cache key: failed to calculate checksum", "failed to compute cache key: failed to calculate checksum"},
		{"token in prose stays", "error TS1005: ';' expected near token", "error TS1005: ';' expected near token"},
		{"short value stays", "PASSWORD=abc", "PASSWORD=abc"},
		{"plain url stays", "fetching https://github.com/acme/app.git", "fetching https://github.com/acme/app.git"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.String(tt.in); got != tt.want {
				t.Errorf("String(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestZeroRedactorMasksFormats(t *testing.T) {
	var r *Redactor
	if got := r.String("ghp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"); got != Mask {
		t.Errorf("nil Redactor: got %q", got)
	}
}

func TestSecretValues(t *testing.T) {
	env := map[string]string{
		"GITHUB_TOKEN":             "ghp_zzzzzzzzzzzzzzzzzzzzzz",
		"NPM_AUTH_TOKEN":           "abc",
		"AWS_SECRET_ACCESS_KEY":    "wJalrXUtnFEMI/K7MDENG",
		"DB_PASSWORD":              "true",
		"SERVICE_CREDENTIALS":      `{"k":"v-long-enough"}`,
		"BUILDKITE_BRANCH":         "main-branch-name",
		"MY_SECRET":                "sekrit-sekrit",
		"DEPLOY_CONNECTION_STRING": "postgres://u:p@h/db",
	}
	got := SecretValues(env)
	want := []string{"ghp_zzzzzzzzzzzzzzzzzzzzzz", "postgres://u:p@h/db", "sekrit-sekrit", "wJalrXUtnFEMI/K7MDENG", `{"k":"v-long-enough"}`}
	if !slices.Equal(got, want) {
		t.Errorf("SecretValues = %q, want %q", got, want)
	}
	for name, want := range map[string]bool{"TOKEN": true, "api_key": true, "KEYBOARD": false, "MONKEY": false, "PATH": false, "X_CREDENTIALS": true} {
		if IsSecretName(name) != want {
			t.Errorf("IsSecretName(%q) = %v, want %v", name, !want, want)
		}
	}
}

func TestWriter(t *testing.T) {
	var b strings.Builder
	w := New("planted-secret-123").NewWriter(&b)
	in := "one planted-secret-123\n-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAB3Nza\nmore\n-----END OPENSSH PRIVATE KEY-----\nafter ghp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
	for _, chunk := range []string{in[:5], in[5:40], in[40:]} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "one [REDACTED]\n[REDACTED]\n[REDACTED]\n[REDACTED]\n[REDACTED]\nafter [REDACTED]"
	if b.String() != want {
		t.Errorf("got %q\nwant %q", b.String(), want)
	}
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"export API_TOKEN=abcdef123456",
		"https://u:p@host/x",
		"ghp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
		"-----BEGIN PRIVATE KEY-----\nabc",
		"Authorization: Bearer xyz12345678",
	} {
		f.Add(s, "planted-secret")
	}
	f.Fuzz(func(t *testing.T, s, secret string) {
		r := New(secret)
		out := r.String(s)
		if len(strings.TrimSpace(secret)) >= MinValueLength && !isBoring(strings.TrimSpace(secret)) && strings.Contains(out, strings.TrimSpace(secret)) && !strings.Contains(Mask, strings.TrimSpace(secret)) {
			t.Fatalf("secret %q survived in %q", secret, out)
		}
		if r.String(out) != out && !strings.Contains(out, Mask) {
			t.Fatalf("redaction is not idempotent on %q", out)
		}
	})
}
