package web

import (
	"testing"
	"time"
)

func TestEvery(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{time.Minute, "every minute"},
		{5 * time.Minute, "every 5 minutes"},
		{30 * time.Second, "every 30 seconds"},
		{time.Second, "every 1 second"},
		{90 * time.Second, "every 1 min 30 s"},
		{time.Hour, "every hour"},
		{2 * time.Hour, "every 2 hours"},
		{61 * time.Minute, "every 61 minutes"},
	} {
		if got := every(tc.d); got != tc.want {
			t.Errorf("every(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
	if got := (detectionSource{PollInterval: 2 * time.Minute}).PollEvery(); got != "every 2 minutes" {
		t.Errorf("PollEvery = %q", got)
	}
}
