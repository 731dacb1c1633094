package webhook

import (
	"strings"
	"testing"
)

func TestStoredBodyDropsEnvironment(t *testing.T) {
	raw := []byte(`{"event":"build.finished","build":{"id":"b1","number":7,"state":"failed","branch":"main",
		"env":{"DEPLOY_TOKEN":"s3cr3t-build-env"},"created_at":"2026-01-02 03:04:05 UTC"},
		"pipeline":{"slug":"web","repository":"git@github.com:acme/web.git","env":{"NPM_TOKEN":"s3cr3t-pipeline-env"},
		"steps":[{"type":"script","command":"make","env":{"AWS_SECRET_ACCESS_KEY":"s3cr3t-step-env"}}]},
		"sender":{"id":"u1","name":"Ann"}}`)
	got, err := storedBody(raw)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(got), "s3cr3t") || strings.Contains(string(got), `"env"`) {
		t.Fatalf("stored body keeps environment variables: %s", got)
	}
	u, err := ParsePayload(got)
	if err != nil {
		t.Fatal(err)
	}
	if u.Build.Number != 7 || u.Build.Pipeline != "web" || u.Build.State != "failed" || u.Build.CreatedAt.IsZero() {
		t.Fatalf("stored body lost what ingest needs: %+v", u.Build)
	}
	if _, err := storedBody([]byte(`[1,2]`)); err == nil {
		t.Fatal("a JSON array was accepted as an event")
	}
}
