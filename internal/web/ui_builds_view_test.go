package web

import (
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{0, ""},
		{-time.Second, ""},
		{300 * time.Millisecond, "under 1 s"},
		{45 * time.Second, "45 s"},
		{3 * time.Minute, "3 min"},
		{3*time.Minute + 20*time.Second, "3 min 20 s"},
		{time.Hour, "1 h"},
		{time.Hour + 5*time.Minute + 10*time.Second, "1 h 5 min"},
	} {
		if got := duration(tc.in); got != tc.want {
			t.Errorf("duration(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCheckView(t *testing.T) {
	for _, tc := range []struct {
		status, label, icon string
	}{
		{"pass", "Pass", "✓"},
		{"warn", "Warning", "!"},
		{"fail", "Fail", "✗"},
		{"not_checked", "Not checked", "–"},
		{"something_new", "Not checked", "–"},
	} {
		v := DiagnosticCheck{Status: tc.status}.View()
		if v.Label != tc.label || v.Icon != tc.icon {
			t.Errorf("check %q shows %q %q, want %q %q", tc.status, v.Icon, v.Label, tc.icon, tc.label)
		}
	}
	if n := (DiagnosticCheck{ID: "webhooks"}).Name(); n != "Webhook deliveries" {
		t.Errorf("webhooks check named %q", n)
	}
	if n := (DiagnosticCheck{ID: "future_check"}).Name(); n != "future_check" {
		t.Errorf("unknown check named %q, want its id", n)
	}
}
