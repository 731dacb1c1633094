package classify

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// agentLog wraps output lines in the Buildkite byte format with the agent's
// failure tail when status is not 0.
func agentLog(status string, lines ...string) string {
	var b strings.Builder
	b.WriteString("\x1b_bk;t=1700000000000\x07~~~ Running commands\n")
	b.WriteString("\x1b_bk;t=1700000000001\x07\x1b[90m$\x1b[0m ./ci.sh\n")
	for _, l := range lines {
		b.WriteString("\x1b_bk;t=1700000000002\x07" + l + "\n")
	}
	if status != "0" {
		b.WriteString("\x1b_bk;t=1700000000003\x07^^^ +++\n")
		b.WriteString("\x1b_bk;t=1700000000003\x07\x1b[31m🚨 Error: The command exited with status " + status + "\x1b[0m\n")
		b.WriteString("\x1b_bk;t=1700000000003\x07user command error: exit status " + status + "\n")
	}
	return b.String()
}

func TestAnalyze(t *testing.T) {
	tests := []struct {
		name     string
		log      string
		failed   bool
		category Category
		title    string
		loc      *Location
		tests    []string
		count    int
	}{
		{
			name: "passing log says nothing", failed: false, count: 0,
			log: agentLog("0", "--- FAIL: TestX (0.00s)", "npm ERR! code E404", "error: something"),
		},
		{
			name: "agent exit alone is a low-confidence unknown", failed: true, count: 1,
			category: Unknown, title: "Command exited with status 2",
			log: agentLog("2", "doing things", "done things"),
		},
		{
			name: "exit 137 means killed", failed: true, count: 1, category: OOM,
			log: agentLog("137", "building"),
		},
		{
			name: "error in file and test names is not a failure", failed: true, count: 1, category: Unknown,
			log: agentLog("1", "compiling src/errors/error_handler.go", "--- PASS: TestErrorPaths (0.00s)", "0 errors, 3 warnings", "ok  \tgithub.com/acme/errors\t0.1s", "warning: deprecated API errorf"),
		},
		{
			name: "go build errors without a column after a # pkg header", failed: true, count: 1,
			category: Compile, title: "undefined: x", loc: &Location{Path: "app/main.go", Line: 12},
			log: agentLog("2", "# example.com/app", "app/main.go:12: undefined: x", "FAIL\texample.com/app [build failed]"),
		},
		{
			name: "log.Lshortfile lines are not compile errors", failed: true, count: 1, category: Unknown,
			log: agentLog("1", "main.go:12: connecting to the database", "=== RUN   TestX", "main.go:30: retrying"),
		},
		{
			name: "compile error before the test failures it causes", failed: true, count: 2,
			category: Compile, title: "undefined: Foo", loc: &Location{Path: "pkg/a.go", Line: 3, Column: 9},
			log: agentLog("1", "--- FAIL: TestLater (0.00s)", "    later_test.go:9: boom", "# example.com/pkg", "./pkg/a.go:3:9: undefined: Foo", "FAIL\texample.com/pkg [build failed]"),
		},
		{
			name: "go test -json output events are read as the text they carry", failed: true, count: 1,
			category: Test, tests: []string{"TestOne"}, loc: &Location{Path: "one_test.go", Line: 7},
			log: agentLog("1",
				`{"Time":"2024-01-01T00:00:00Z","Action":"run","Package":"p","Test":"TestOne"}`,
				`{"Time":"2024-01-01T00:00:00Z","Action":"output","Package":"p","Test":"TestOne","Output":"=== RUN   TestOne\n"}`,
				`{"Time":"2024-01-01T00:00:00Z","Action":"output","Package":"p","Test":"TestOne","Output":"    one_test.go:7: got 1, want 2\n"}`,
				`{"Time":"2024-01-01T00:00:00Z","Action":"output","Package":"p","Test":"TestOne","Output":"--- FAIL: TestOne (0.00s)\n"}`,
				`{"Time":"2024-01-01T00:00:00Z","Action":"fail","Package":"p","Test":"TestOne","Elapsed":0}`),
		},
		{
			name: "a benchmark's log lines come before its FAIL line", failed: true, count: 1,
			category: Test, tests: []string{"BenchmarkParse"}, loc: &Location{Path: "parse_test.go", Line: 40},
			log: agentLog("1", "BenchmarkParse", "    parse_test.go:40: bad input", "--- FAIL: BenchmarkParse", "FAIL"),
		},
		{
			name: "files listed by a terraform fmt -check command are lint failures", failed: true, count: 1,
			category: Lint, loc: &Location{Path: "modules/vpc/main.tf"},
			log: agentLog("3", "$ terraform fmt -check -recursive", "modules/vpc/main.tf", "variables.tf"),
		},
		{
			name: "a .tf file name outside terraform fmt -check is not a failure", failed: true, count: 1, category: Unknown,
			log: agentLog("1", "$ ls", "main.tf", "variables.tf"),
		},
		{
			name: "a cucumber summary names the report above it, across blank lines", failed: true, count: 1,
			category: Test, title: "Cucumber: 3 scenarios (1 failed, 2 passed)",
			log: agentLog("1", "Failures:", "", "       Boom: broken step", "", "3 scenarios (1 failed, 2 passed)"),
		},
		{
			name: "retried then passed is not a failure", failed: true, count: 1, category: Test, tests: []string{"TestReal"},
			log: agentLog("1", "--- FAIL: TestFlaky (0.00s)", "--- FAIL: TestReal (0.00s)", "    real_test.go:3: nope", "=== RUN   TestFlaky", "--- PASS: TestFlaky (0.01s)"),
		},
		{
			name: "repository prefixes are stripped", failed: true, count: 1, category: Compile,
			loc: &Location{Path: "src/main.c", Line: 7, Column: 2},
			log: agentLog("2", "/var/lib/buildkite-agent/builds/agent-7/acme/app/src/main.c:7:2: error: expected ';' before '}' token"),
		},
		{
			name: "docker workdir prefix is stripped", failed: true, count: 1, category: Typecheck,
			loc: &Location{Path: "src/a.ts", Line: 1, Column: 5},
			log: agentLog("2", "/app/src/a.ts(1,5): error TS2304: Cannot find name 'x'."),
		},
		{
			name: "secondary summaries only without a primary", failed: true, count: 1, category: Compile, title: "make: [all] Error 2",
			log: agentLog("2", "make: *** [all] Error 2"),
		},
		{
			name: "harmless noise ranks below the test failure", failed: true, count: 2, category: Test, tests: []string{"TestReal"},
			log: agentLog("1", "/usr/bin/env: tput: command not found", "find: '/proc/1/map_files': Permission denied", "--- FAIL: TestReal (0.00s)", "    real_test.go:3: nope"),
		},
		{
			name: "no agent markers: rules alone decide", failed: true, count: 1, category: Test,
			log: "--- FAIL: TestPlain (0.00s)\n    plain_test.go:4: bad\nFAIL\n",
		},
		{
			name: "a Docker step that builds is not a dependency failure", failed: true, count: 1, category: Compile,
			log: agentLog("1", `ERROR: failed to solve: process "/bin/sh -c yarn build" did not complete successfully: exit code: 1`),
		},
		{
			name: "a Docker step that installs packages is a dependency failure", failed: true, count: 1, category: Dependency,
			log: agentLog("1", `ERROR: failed to solve: process "/bin/sh -c yarn install --frozen-lockfile" did not complete successfully: exit code: 1`),
		},
		{
			name: "a line ending in (unused) is not golangci-lint output", failed: false, count: 0,
			log: "Removing intermediate packages (unused)\nDone\n",
		},
		{
			name: "golangci-lint annotations without a path", failed: true, count: 1, category: Lint,
			log: "##[error]Error return value of `f.Close` is not checked (errcheck)\n",
		},
		{
			name: "plain passing output", failed: false, count: 0,
			log: "ok  \tgithub.com/acme/x\t0.1s\nPASS\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Analyze(strings.NewReader(tt.log), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Failed != tt.failed {
				t.Errorf("Failed = %v, want %v", res.Failed, tt.failed)
			}
			if len(res.Failures) != tt.count {
				t.Fatalf("%d failures, want %d: %+v", len(res.Failures), tt.count, res.Failures)
			}
			if tt.count == 0 {
				return
			}
			f := res.Failures[0]
			if f.Category != tt.category {
				t.Errorf("category %s, want %s (%q)", f.Category, tt.category, f.Title)
			}
			if tt.title != "" && !strings.Contains(f.Title, tt.title) {
				t.Errorf("title %q, want it to contain %q", f.Title, tt.title)
			}
			if tt.loc != nil && (len(f.Locations) == 0 || f.Locations[0] != *tt.loc) {
				t.Errorf("locations %+v, want %+v first", f.Locations, *tt.loc)
			}
			for _, want := range tt.tests {
				if !containsStr(f.Tests, want) {
					t.Errorf("tests %q, want %q", f.Tests, want)
				}
			}
			if f.FirstLine <= 0 || f.LastLine < f.FirstLine || f.Fingerprint == "" || len(f.Excerpt) == 0 {
				t.Errorf("incomplete failure %+v", f)
			}
		})
	}
}

func TestFingerprintIgnoresVolatileParts(t *testing.T) {
	a := agentLog("1", "--- FAIL: TestX (0.12s)", "    x_test.go:10: got 0xc000123456 at 2024-01-02T03:04:05Z after 1.5s in /tmp/go-build123/x")
	b := agentLog("1", "--- FAIL: TestX (3.40s)", "    x_test.go:12: got 0xc000999999 at 2025-06-07T08:09:10Z after 2s in /tmp/go-build999/x")
	c := agentLog("1", "--- FAIL: TestY (0.12s)", "    y_test.go:10: got 1")
	fp := func(s string) string {
		res, err := Analyze(strings.NewReader(s), Options{})
		if err != nil || len(res.Failures) != 1 {
			t.Fatalf("analyse: %v %+v", err, res)
		}
		return res.Failures[0].Fingerprint
	}
	if fp(a) != fp(b) {
		t.Error("same failure with different volatile parts has different fingerprints")
	}
	if fp(a) == fp(c) {
		t.Error("different tests share a fingerprint")
	}
}

type upperRedactor struct{}

func (upperRedactor) String(s string) string {
	return strings.ReplaceAll(s, "hunter2hunter2", "[REDACTED]")
}

func TestRedactorIsApplied(t *testing.T) {
	log := agentLog("1", "--- FAIL: TestLogin (0.00s)", "    login_test.go:5: login with password hunter2hunter2 failed")
	res, err := Analyze(strings.NewReader(log), Options{Redactor: upperRedactor{}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	if bytes.Contains(b, []byte("hunter2hunter2")) {
		t.Errorf("secret leaked: %s", b)
	}
	if !bytes.Contains(b, []byte("[REDACTED]")) {
		t.Errorf("no mask in %s", b)
	}
}

func TestJSONShape(t *testing.T) {
	res, err := Analyze(strings.NewReader("ok\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	if string(b) != `{"failed":false,"failures":[]}` {
		t.Errorf("got %s", b)
	}
	res, _ = Analyze(strings.NewReader(agentLog("3")), Options{})
	b, _ = json.Marshal(res)
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	f := doc["failures"].([]any)[0].(map[string]any)
	for _, k := range []string{"category", "title", "section", "excerpt", "locations", "tests", "fingerprint", "confidence", "first_line", "last_line"} {
		if _, ok := f[k]; !ok {
			t.Errorf("failure has no %q: %s", k, b)
		}
	}
	if len(f) != 10 {
		t.Errorf("failure has %d keys, want 10: %s", len(f), b)
	}
}

func TestRelPath(t *testing.T) {
	tests := map[string]string{
		"/var/lib/buildkite-agent/builds/agent-1/acme/app/src/x.go": "src/x.go",
		"/buildkite/builds/i-0abc-1/acme/app/lib/y.rb":              "lib/y.rb",
		"/home/runner/work/app/app/a/b.ts":                          "a/b.ts",
		"/workdir/pkg/z.py":                                         "pkg/z.py",
		"/app/src/index.js":                                         "src/index.js",
		"./cmd/main.go":                                             "cmd/main.go",
		"/root/go/pkg/mod/github.com/x/y@v1.2.3/z.go":               "github.com/x/y@v1.2.3/z.go",
		"file:///var/lib/buildkite-agent/builds/a/b/c/src/Main.kt":  "src/Main.kt",
		"src/already/relative.rs":                                   "src/already/relative.rs",
		"/usr/lib/python3.12/os.py":                                 "/usr/lib/python3.12/os.py",
		"/home/travis/build/acme/app/Tests/AppTests/A.swift":        "Tests/AppTests/A.swift",
		"/__w/app/app/Tests/AppTests/B.swift":                       "Tests/AppTests/B.swift",
	}
	for in, want := range tests {
		if got := relPath(in, nil); got != want {
			t.Errorf("relPath(%q) = %q, want %q", in, got, want)
		}
	}
	if got := relPath("/srv/checkout/x/y.go", []string{"/srv/checkout"}); got != "x/y.go" {
		t.Errorf("custom prefix: got %q", got)
	}
}

func TestRulesCompile(t *testing.T) {
	if _, err := newEngine(Rules); err != nil {
		t.Fatal(err)
	}
	if _, err := newEngine([]Rule{{ID: "x", Literals: []string{"abc"}, Pattern: "("}}); err == nil {
		t.Error("bad pattern compiled")
	}
	if _, err := newEngine([]Rule{{ID: "x", Pattern: "a"}}); err == nil {
		t.Error("rule without literals accepted")
	}
}

func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{
		agentLog("1", "--- FAIL: TestX (0.00s)", "    x_test.go:1: y"),
		agentLog("1", "Traceback (most recent call last):", "  File \"x.py\", line 1, in <module>", "ValueError: bad"),
		agentLog("2", "panic: boom", "", "goroutine 1 [running]:", "main.main()", "\t/app/main.go:5 +0x1d"),
		agentLog("1", "WARNING: DATA RACE", "=================="),
		agentLog("0", "  ● a › b", "npm ERR! code E404"),
		"\x1b_bk;t=1\x07\x1b[31m🚨 Error: The command exited with status 1\x1b[0m\n",
		"  1 failing\n  1) x\n     y:\n",
		"____ test_x ____\nE   assert 1\nx.py:3: AssertionError\nFAILED x.py::test_x - boom\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		res, err := Analyze(bytes.NewReader(in), Options{MaxExcerptLines: 5, MaxFailures: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Failures) > 3 {
			t.Fatalf("%d failures, cap 3", len(res.Failures))
		}
		for _, f := range res.Failures {
			if len(f.Excerpt) > 5 || f.Title == "" || f.Category == "" || f.Fingerprint == "" {
				t.Fatalf("bad failure %+v", f)
			}
			if strings.ContainsRune(f.Title, '\x1b') {
				t.Fatalf("title has an escape: %q", f.Title)
			}
			if utf8.Valid(in) && !utf8.ValidString(f.Title) && len(f.Title) < 197 {
				t.Fatalf("title not UTF-8: %q", f.Title)
			}
		}
		if _, err := json.Marshal(res); err != nil {
			t.Fatal(err)
		}
	})
}

func TestGoPkgHeader(t *testing.T) {
	tests := map[string]bool{
		"# github.com/acme/app":                                 true,
		"# package/testpkg/pkg_test [package/testpkg/pkg.test]": true,
		"# command-line-arguments":                              true,
		"# Creating build directory":                            false,
		"#comment":                                              false,
		"# a [b":                                                false,
		"## heading":                                            false,
	}
	for in, want := range tests {
		if got := goPkgHeader([]byte(in)); got != want {
			t.Errorf("goPkgHeader(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestStripLinePrefix(t *testing.T) {
	tests := map[string]string{
		"2024-05-01T10:00:00.1234567Z --- FAIL: TestX": "--- FAIL: TestX",
		"2024-05-01T10:00:00Z hello":                   "hello",
		"#12 3.210 --- FAIL: TestY (0.01s)":            "--- FAIL: TestY (0.01s)",
		"#12 DONE 0.1s":                                "#12 DONE 0.1s",
		"api-1  | panic: boom":                         "panic: boom",
		"api-1  |":                                     "",
		"File  | % Stmts":                              "File  | % Stmts",
		"plain line":                                   "plain line",
		"2024-05-01 not a timestamp prefix here":       "2024-05-01 not a timestamp prefix here",
		"08:42:27  * What went wrong:":                 "* What went wrong:",
		"7:51:34 PM: npm error code ERESOLVE":          "npm error code ERESOLVE",
		"12:11:57.123 + curl -fsS x":                   "+ curl -fsS x",
		"[15:50:52.950] STEP 1/7: FROM debian":         "STEP 1/7: FROM debian",
		"[2023-03-07T13:01:06.872Z] [ERROR] boom":      "[ERROR] boom",
		"[6:53:23 PM] Found 1 error.":                  "Found 1 error.",
		// Round 7: dbt's " | " after the clock, Airflow's task log, the
		// indentation after Jenkins' two blanks.
		"12:03:30 | 1 of 2 START view model x": "1 of 2 START view model x",
		"12:03:40 |":                           "",
		"[2023-09-08, 10:14:54 +07] {subprocess.py:94} INFO - 03:14:54  Done. PASS=0": "Done. PASS=0",
		"[2023-09-08, 10:14:54 +07] {subprocess.py:94} INFO -   improper relation":    "  improper relation",
		"17:23:08    3:17  error  truthy":                                             "  3:17  error  truthy",
		"[INFO] BUILD FAILURE":                                                        "[INFO] BUILD FAILURE",
		"[1/3] Resolving packages...":                                                 "[1/3] Resolving packages...",
		"2020-06-21T07:53:30.6448589Z ##[error]boom":                                  "boom",
		"2020-06-21T07:53:30.6448589Z":                                                "",
		"2020-06-21T07:53:30+00:00":                                                   "",
		"2020-06-21T07:53:30.6448589Z-not-a-stamp":                                    "2020-06-21T07:53:30.6448589Z-not-a-stamp",
		"##[group]Run make":                                                           "Run make",
		"00:02 +1 -1: parses dates [E]":                                               "00:02 +1 -1: parses dates [E]",
		"10:30:00 INFO started":                                                       "INFO started",
		"10:30:00x":                                                                   "10:30:00x",
		"1:2:3 nope":                                                                  "1:2:3 nope",
		"llvm> FAIL: lit :: a.py (1 of 2)":                                            "FAIL: lit :: a.py (1 of 2)",
		"python3.12-numpy> E   assert 1 == 2":                                         "E   assert 1 == 2",
		"a> b":                                                                        "a> b",
		"x => y":                                                                      "x => y",
	}
	for in, want := range tests {
		if got := string(stripLinePrefix([]byte(in))); got != want {
			t.Errorf("stripLinePrefix(%q) = %q, want %q", in, got, want)
		}
	}
}
