package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
)

func runCheck(t *testing.T, stdin string, args ...string) (stdout string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}
	cmd := newBuildkiteCheckCmd(e)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	var xe *exitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &xe):
		return out.String() + errb.String() + xe.Error(), xe.code
	default:
		return out.String() + err.Error(), 1
	}
}

func TestBuildkiteCheck(t *testing.T) {
	sc := bksim.Demo()
	sim := bksim.New(sc)
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	dir := t.TempDir()
	tokenFile := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(sc.Token(name)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("good token from file", func(t *testing.T) {
		out, code := runCheck(t, "", "--token-file", tokenFile("good"), "--api-url", srv.URL)
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		for _, want := range []string{"✓ read_build_logs", "granted", "Organization", "acme", "Result: OK"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, sc.Token("good")[5:]) {
			t.Errorf("output contains the token:\n%s", out)
		}
	})
	t.Run("missing scopes from stdin", func(t *testing.T) {
		out, code := runCheck(t, sc.Token("missing-scopes")+"\n", "--token-file", "-", "--api-url", srv.URL)
		if code != 1 {
			t.Fatalf("exit %d, want 1:\n%s", code, out)
		}
		for _, want := range []string{"✗ read_build_logs", "MISSING", "missing_scopes", "What to do:", "NOT USABLE"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("json", func(t *testing.T) {
		out, code := runCheck(t, "", "--token-file", tokenFile("multi-org"), "--api-url", srv.URL, "--json")
		if code != 1 {
			t.Fatalf("exit %d, want 1:\n%s", code, out)
		}
		var got struct {
			OK       bool `json:"ok"`
			Problems []struct {
				Code string `json:"code"`
			} `json:"problems"`
			RequiredScopes []any `json:"required_scopes"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		if got.OK || len(got.Problems) != 1 || got.Problems[0].Code != "organization_required" || len(got.RequiredScopes) != 9 {
			t.Fatalf("report = %+v", got)
		}
		out, code = runCheck(t, "", "--token-file", tokenFile("multi-org"), "--api-url", srv.URL, "--organization", "acme-labs")
		if code != 0 {
			t.Fatalf("with --organization: exit %d:\n%s", code, out)
		}
	})
	t.Run("token only from file", func(t *testing.T) {
		if _, code := runCheck(t, "", "--api-url", srv.URL); code != checkExitUsage {
			t.Fatalf("no --token-file: exit %d, want %d", code, checkExitUsage)
		}
		if _, code := runCheck(t, "", "--token-file", filepath.Join(dir, "absent"), "--api-url", srv.URL); code != checkExitUsage {
			t.Fatalf("missing file: exit %d, want %d", code, checkExitUsage)
		}
		if _, code := runCheck(t, "", sc.Token("good"), "--api-url", srv.URL); code == 0 {
			t.Fatal("a token given as an argument was accepted")
		}
	})
}
