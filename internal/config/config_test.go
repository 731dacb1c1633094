package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidateDefaults(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "http://127.0.0.1:8080" {
		t.Fatalf("PublicURL = %q", c.PublicURL)
	}
	if c.Secure() {
		t.Fatal("http public URL reported secure")
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.Addr = "nope"
	c.DatabaseURL = "mysql://x"
	c.LogFormat = "xml"
	c.PollInterval = time.Second
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	for _, want := range []string{"--addr", "--database-url", "--log-format", "--poll-interval"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}
