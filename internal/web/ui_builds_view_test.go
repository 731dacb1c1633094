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

func TestDurationOf(t *testing.T) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	later := func(d time.Duration) *time.Time { t := at.Add(d); return &t }
	for _, tc := range []struct {
		start, end *time.Time
		want       string
	}{
		{nil, nil, ""},
		{&at, nil, ""},
		{nil, &at, ""},
		{&at, later(-time.Second), ""},
		{&at, &at, "under 1 s"},
		{&at, later(200 * time.Millisecond), "under 1 s"},
		{&at, later(90 * time.Second), "1 min 30 s"},
	} {
		if got := durationOf(tc.start, tc.end); got != tc.want {
			t.Errorf("durationOf(%v, %v) = %q, want %q", tc.start, tc.end, got, tc.want)
		}
	}
}
