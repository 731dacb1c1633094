package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const failingLog = "\x1b_bk;t=1700000000000\x07~~~ Running commands\n" +
	"\x1b_bk;t=1700000000001\x07\x1b[90m$\x1b[0m go test ./...\n" +
	"\x1b_bk;t=1700000000002\x07--- FAIL: TestLogin (0.00s)\n" +
	"\x1b_bk;t=1700000000002\x07    login_test.go:12: token ghp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ rejected\n" +
	"\x1b_bk;t=1700000000003\x07\x1b[31m🚨 Error: The command exited with status 1\x1b[0m\n"

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestAnalyzeCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "job.log")
	if err := os.WriteFile(path, []byte(failingLog), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{path, "-"} {
		code, out, errOut := runCLI(t, failingLog, "analyze", "--json", src)
		if code != 0 {
			t.Fatalf("analyze --json %s: exit %d, stderr %q", src, code, errOut)
		}
		var doc struct {
			Failed   bool `json:"failed"`
			Failures []struct {
				Category string   `json:"category"`
				Title    string   `json:"title"`
				Tests    []string `json:"tests"`
			} `json:"failures"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("output is not one JSON document: %v\n%s", err, out)
		}
		if !doc.Failed || len(doc.Failures) != 1 || doc.Failures[0].Category != "test" || doc.Failures[0].Tests[0] != "TestLogin" {
			t.Errorf("unexpected analysis %+v", doc)
		}
		if strings.Contains(out, "ghp_") {
			t.Errorf("token leaked into the output: %s", out)
		}
	}

	code, out, _ := runCLI(t, "", "analyze", "--color", "never", path)
	if code != 0 || !strings.Contains(out, "[test] TestLogin failed") || strings.Contains(out, "\x1b[") {
		t.Errorf("human output (exit %d):\n%s", code, out)
	}
}

func TestAnalyzeCommandErrors(t *testing.T) {
	t.Setenv("BUILDKITE_API_TOKEN", "")
	code, _, errOut := runCLI(t, "", "analyze", "https://buildkite.com/acme/app/builds/42")
	if code != 1 || !strings.Contains(errOut, "no Buildkite API token") {
		t.Errorf("build URL: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "", "analyze", filepath.Join(t.TempDir(), "missing.log"))
	if code != 1 || !strings.Contains(errOut, "open job log") {
		t.Errorf("missing file: exit %d, stderr %q", code, errOut)
	}
	code, _, _ = runCLI(t, "", "analyze", "https://example.com/x")
	if code != 1 {
		t.Errorf("foreign URL: exit %d, want 1", code)
	}
}

func TestCorpusScoreCommand(t *testing.T) {
	code, out, errOut := runCLI(t, "", "corpus", "score", "--strict", filepath.Join("..", "..", "testdata", "corpus"))
	if code != 0 {
		t.Fatalf("corpus score: exit %d, stderr %q\n%s", code, errOut, out)
	}
	for _, want := range []string{"detection rate", "category accuracy", "root cause in first excerpt", "location recall", "failing-test recall", "false positives on passing logs"} {
		if !strings.Contains(out, want) {
			t.Errorf("score output lacks %q:\n%s", want, out)
		}
	}
}
