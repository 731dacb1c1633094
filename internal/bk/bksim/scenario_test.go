package bksim_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
)

const minimal = `{
  "version": 1,
  "organizations": [{"slug": "acme", "name": "Acme"}],
  "users": [{"name": "Ann", "email": "ann@acme.test"}],
  "tokens": [{"name": "good", "value": "bkua_0123456789abcdef0123456789abcdef01234567", "scopes": ["read_builds"], "organizations": ["acme"], "expires_at": "+90d"}],
  "pipelines": [{"org": "acme", "slug": "api", "repository": "git@github.com:acme/api.git"}],
  "builds": [
    {"pipeline": "acme/api", "number": 1, "state": "failed", "branch": "main", "created_at": "-2h",
     "jobs": [{"key": "test", "state": "failed", "log": {"generate": {"ecosystem": "go", "failure": "panic"}}}]}
  ]
}
`

func TestParseScenarioErrors(t *testing.T) {
	tests := []struct {
		name, old, new string
		want           string
	}{
		{"unknown field", `"branch": "main"`, `"brnch": "main"`, `f.json:8: builds[0].brnch: unknown field "brnch"`},
		{"bad state", `"state": "failed", "branch"`, `"state": "exploded", "branch"`, `f.json:8: builds[0].state: unknown build state "exploded"`},
		{"bad job state", `"key": "test", "state": "failed"`, `"key": "test", "state": "nope"`, `f.json:9: builds[0].jobs[0].state: unknown job state "nope"`},
		{"unknown org", `"org": "acme", "slug": "api"`, `"org": "acme2", "slug": "api"`, `f.json:6: pipelines[0].org: unknown organization "acme2"`},
		{"wrong type", `"number": 1`, `"number": "one"`, `f.json:8: builds.number: cannot use a JSON string as int`},
		{"bad time", `"created_at": "-2h"`, `"created_at": "yesterday"`, `f.json:8: time "yesterday" is neither RFC 3339`},
		{"bad version", `"version": 1`, `"version": 7`, `f.json:2: version: unsupported scenario version 7`},
		{"bad ecosystem", `"ecosystem": "go"`, `"ecosystem": "cobol"`, `f.json:9: builds[0].jobs[0].log.generate: unknown log ecosystem "cobol"`},
		{"token prefix", `"value": "bkua_`, `"value": "xx_`, `f.json:5: tokens[0].value: token value must`},
		{"syntax", `"users": [`, `"users": [,`, `f.json:4: invalid JSON`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(minimal, tt.old, tt.new, 1)
			if doc == minimal {
				t.Fatal("replacement did not apply")
			}
			_, err := bksim.ParseScenario("f.json", []byte(doc))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %v\nwant prefix %s", err, tt.want)
			}
			var se *bksim.ScenarioError
			if !errors.As(err, &se) || se.File != "f.json" {
				t.Fatalf("not a *ScenarioError naming the file: %#v", err)
			}
		})
	}
}

func TestLoadScenarioServes(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "job.log"), []byte("\x1b_bk;t=1700000000000\x07hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(minimal, `"log": {"generate": {"ecosystem": "go", "failure": "panic"}}`, `"log": {"file": "job.log"}`, 1)
	path := filepath.Join(dir, "s.json")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := bksim.LoadScenario(path)
	if err != nil {
		t.Fatal(err)
	}
	if toks := sc.Tokens(); len(toks) != 1 || toks[0].Name != "good" {
		t.Fatalf("tokens %+v", toks)
	}
	sim := bksim.New(sc)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	defer sim.Close()
	h := &harness{sim: sim, srv: srv}
	resp, body := h.get(t, sc.Token("good"), "/v2/organizations/acme/pipelines/api/builds")
	var builds []map[string]any
	if err := json.Unmarshal(body, &builds); err != nil || resp.StatusCode != 200 || len(builds) != 1 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if err := os.Remove(filepath.Join(dir, "job.log")); err != nil {
		t.Fatal(err)
	}
	if _, err := bksim.LoadScenario(path); err == nil || !strings.Contains(err.Error(), "builds[0].jobs[0].log.file") {
		t.Fatalf("missing log file: %v", err)
	}
}

func TestDemoScenarioRoundTrips(t *testing.T) {
	data, err := json.MarshalIndent(bksim.Demo(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := bksim.ParseScenario("demo.json", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Tokens()) != len(bksim.Demo().Tokens()) {
		t.Fatal("token count changed")
	}
	for _, tk := range bksim.Demo().Tokens() {
		if tk.Purpose == "" {
			t.Errorf("token %s has no purpose", tk.Name)
		}
	}
	if v := bksim.DemoTokenValue("good"); len(v) != 45 || !strings.HasPrefix(v, "bkua_") || strings.ToLower(v) != v {
		t.Errorf("demo token %q is not bkua_ + 40 lower-case hex", v)
	}
}

func FuzzParseScenario(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"builds":[{"pipeline":"x"}]}`))
	f.Add([]byte(`[`))
	demo, _ := json.Marshal(bksim.Demo())
	f.Add(demo)
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := bksim.ParseScenario("fuzz.json", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.json") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		// Anything that parses must serve.
		sim := bksim.New(sc)
		defer sim.Close()
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, httptest.NewRequest("GET", "/v2/builds", nil))
		if rec.Code != 401 {
			t.Fatalf("unauthenticated /v2/builds = %d", rec.Code)
		}
	})
}

// FuzzControlAPI throws arbitrary bodies at the control endpoints; they must
// answer 2xx/4xx, never panic or 5xx.
func FuzzControlAPI(f *testing.F) {
	f.Add("POST", "/_sim/faults", `{"kind":"status","status":503,"org":"acme"}`)
	f.Add("POST", "/_sim/builds", `{"pipeline":"acme/api","outcome":"failed","jobs":[{"key":"a","log":{"ecosystem":"go","failure":"race"}}]}`)
	f.Add("POST", "/_sim/webhooks", `{"url":"http://127.0.0.1:1/hook","token":"t","mode":"signature","events":["ping"]}`)
	f.Add("PUT", "/_sim/tokens/good/scopes", `{"scopes":["read_builds"]}`)
	f.Add("POST", "/_sim/builds/x/finish", `{"outcome":"passed"}`)
	f.Add("PUT", "/_sim/webhooks/1", `{"url":"ftp://x","token":""}`)
	sim := bksim.New(bksim.Demo())
	f.Cleanup(sim.Close)
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !strings.HasPrefix(path, "/_sim/") || strings.ContainsAny(path, " \r\n\t") || strings.Contains(path, "hook") && strings.Contains(body, "ping") {
			return
		}
		req, err := http.NewRequest(method, "http://sim"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			b, _ := io.ReadAll(rec.Body)
			t.Fatalf("%s %s %q = %d %s", method, path, body, rec.Code, b)
		}
	})
}

func FuzzParseSignature(f *testing.F) {
	f.Add("timestamp=1642080837,signature=582d496ac2d869dd97a3101c4cda346288c49a742592daf582ec64c86449f79c")
	f.Add("a,b")
	f.Add("timestamp=,signature=zz")
	f.Fuzz(func(t *testing.T, header string) {
		ts, sig, err := bksim.ParseSignature(header)
		if err == nil && len(sig) > 0 {
			// A parsed header re-signs to the same shape.
			if got := bksim.Sign("k", ts, nil); !strings.HasPrefix(got, "timestamp=") {
				t.Fatal(got)
			}
		}
	})
}
