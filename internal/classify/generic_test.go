package classify

import (
	"fmt"
	"strings"
	"testing"
)

// cmdLog is a Buildkite job log that runs cmd, prints lines and fails with
// status 1.
func cmdLog(cmd string, lines ...string) string {
	var b strings.Builder
	b.WriteString("\x1b_bk;t=1700000000000\x07~~~ Running commands\n")
	b.WriteString("\x1b_bk;t=1700000000001\x07\x1b[90m$\x1b[0m " + cmd + "\n")
	for _, l := range lines {
		b.WriteString("\x1b_bk;t=1700000000002\x07" + l + "\n")
	}
	b.WriteString("\x1b_bk;t=1700000000003\x07^^^ +++\n")
	b.WriteString("\x1b_bk;t=1700000000003\x07\x1b[31m🚨 Error: The command exited with status 1\x1b[0m\n")
	b.WriteString("\x1b_bk;t=1700000000003\x07user command error: exit status 1\n")
	return b.String()
}

func TestCommandCategory(t *testing.T) {
	for cmd, want := range map[string]Category{
		"zig build test":                           Test,
		"sbt +test":                                Test,
		"./scripts/run-tests.sh --verbose":         Test,
		"opam exec -- dune build @runtest":         Test,
		"pre-commit run --all-files":               Lint,
		"npx markdownlint docs/*.md":               Lint,
		"make lint":                                Lint,
		"vue-tsc --noEmit":                         Typecheck,
		"npm ci":                                   Dependency,
		"cabal update":                             Dependency,
		"make deploy":                              Config,
		"cdk deploy --app cdk.out":                 Config,
		"npx semantic-release":                     Config,
		"cabal build all --enable-tests":           Compile,
		"xcodebuild -scheme App build":             Compile,
		"make":                                     Compile,
		"./ci.sh":                                  Unknown, // a script named after CI says nothing
		"./scripts/release.sh":                     Unknown,
		`git commit -m "test: add a case"`:         Unknown, // quoted words are not the tool's
		"docker build -f Dockerfile.test .":        Unknown, // what failed is inside the image build
		"docker compose run app bundle exec rspec": Unknown,
		// Round 7: runners are unwrapped, task names split, deployment
		// tools keep their subcommands, audits are dependency checks.
		"bundle exec jekyll build":         Compile,
		"poetry run mkdocs build --strict": Compile,
		"./gradlew ktlintFormat":           Lint,
		"./gradlew lintDebug":              Lint,
		"pulumi update":                    Config,
		"helm dependency update ./chart":   Config,
		"helm lint ./chart":                Lint,
		"cargo deny check":                 Dependency,
		"npm audit --audit-level=high":     Dependency,
		"gitleaks detect -v":               Lint,
		"checkov -d .":                     Lint,
		"kubeconform -summary k8s/":        Config,
		"hugo --minify":                    Compile,
		// Round 8: scripts named after a deployment or a licence check.
		"./deploy-dmz.sh":               Config,
		"./scripts/license_check.py":    Lint,
		"make check-license-headers":    Lint,
		"./scripts/check-migrations.sh": Unknown, // "check-x" says too little
	} {
		if got := commandCategory(cmd); got != want {
			t.Errorf("commandCategory(%q) = %s, want %s", cmd, got, want)
		}
	}
}

func TestGenericFallback(t *testing.T) {
	tests := []struct {
		name     string
		log      string
		category Category
		root     string // the first excerpt line
		loc      *Location
	}{
		{
			name: "first error-like line after the command, category from the tool",
			log: cmdLog("gleam test",
				"   Compiled in 0.52s",
				"    Running app_test.main",
				".F.",
				"❌ app_test.parse_test failed",
				"   expected: Ok(1)",
				"        got: Error(Nil)",
				"Finished in 0.011 seconds",
				"3 tests, 1 failure"),
			category: Test, root: "❌ app_test.parse_test failed",
		},
		{
			name: "the first error beats later generic error lines",
			log: cmdLog("stack build --fast",
				"Building library for acme-0.1.0..",
				"src/Acme.hs:14:7: failure: Variable not in scope: frobnicate",
				"Progress 1/2",
				"Error: [S-7282] Stack failed to execute the build plan."),
			category: Compile, root: "src/Acme.hs:14:7: failure: Variable not in scope: frobnicate",
			loc: &Location{Path: "src/Acme.hs", Line: 14, Column: 7},
		},
		{
			name: "short output without error words is shown from its first line",
			log: cmdLog("npx lychee README.md",
				"README.md:3 https://example.invalid/gone [404]",
				"1 Total, 0 OK, 1 Broken"),
			// lychee is a link checker: a lint (it was unknown before
			// round 7 added it and the npx wrapper to the inference).
			category: Lint, root: "README.md:3 https://example.invalid/gone [404]",
			loc: &Location{Path: "README.md", Line: 3},
		},
		{
			name: "a set -x trace ends with the command that failed",
			log: cmdLog("./scripts/verify.sh",
				"+ set -euo pipefail", "+ cd dist", "+ sha256sum --quiet -c SHA256SUMS"),
			category: Unknown, root: "+ sha256sum --quiet -c SHA256SUMS",
		},
		{
			name: "timeouts are named by the error line",
			log: cmdLog("./bin/provision-vm",
				"==> qemu: Waiting for SSH to become available...",
				"==> qemu: Timed out waiting for the guest to boot"),
			category: Timeout, root: "==> qemu: Timed out waiting for the guest to boot",
		},
		{
			name: "decoys are not error lines",
			log: cmdLog("make check",
				"PASS: test_errors (0 errors, 0 failures)",
				"warning: unused variable 'x'",
				"Retrying in 5s after a timeout",
				"FAIL: test_parse_overflow"),
			category: Test, root: "FAIL: test_parse_overflow",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkFirstFailure(t, tt.log, tt.category, tt.root, tt.loc) })
	}
}

// A log copied from another CI system fails with that system's line.
func TestForeignExitLine(t *testing.T) {
	for _, exit := range []string{
		"Exited with code exit status 2",
		"Error: Process completed with exit code 2.",
		"ERROR: Job failed: exit code 2",
		"ERROR: script returned exit code 2",
		`The command "./gradlew check" exited with 2.`,
		// Travis's timing marker glued to the line in a stored log.
		`travis_time:end:0d6db824:start=1564661250086511413,finish=1564661319426204432,duration=69339693019The command "./gradlew check" exited with 2.`,
		"Error: The process '/usr/bin/gradle' failed with exit code 2",
		"Command exited with return code 2",
	} {
		log := "$ ./gradlew check\n> Task :lint FAILED\nsomething went wrong\n" + exit + "\n"
		res := analyzeString(t, log, Options{})
		if !res.Failed || len(res.Failures) == 0 {
			t.Errorf("%q: not failed: %+v", exit, res)
			continue
		}
		if got := res.Failures[0].Excerpt[0]; got != "> Task :lint FAILED" {
			t.Errorf("%q: excerpt starts %q", exit, got)
		}
	}
	for _, line := range []string{"Exited with code 0", "Error: Process completed with exit code 0.", "The command \"x\" exited with 0.",
		`travis_time:end:2f5aa4b0:start=1,finish=2,duration=1The command "x" exited with 0.`, `travis_fold:start:cache.2store build cache`} {
		if res := analyzeString(t, "$ make\nall good\n"+line+"\n", Options{}); res.Failed || len(res.Failures) > 0 {
			t.Errorf("%q: reported %+v", line, res)
		}
	}
}

// "terraform fmt -check" echoed in the output (not run as the agent's
// command) lists files; the list ends at the first line that is not one,
// so a later line that is just a .tf name is not a lint failure.
func TestTerraformFmtListEnds(t *testing.T) {
	log := strings.Join([]string{
		"Run terraform fmt -check",
		"/home/runner/work/_temp/0c4a/terraform-bin fmt -check",
		"main.tf",
		"modules/net/variables.tf",
		"Error: Terraform exited with code 3.",
		"Run terraform validate",
		"Success! The configuration is valid.",
		"Generated:",
		"outputs.tf",
		"",
	}, "\n")
	res := analyzeString(t, log, Options{})
	var files []string
	for _, f := range res.Failures {
		for _, l := range f.Locations {
			files = append(files, l.Path)
		}
	}
	if len(res.Failures) == 0 || res.Failures[0].Category != Lint {
		t.Fatalf("failures %+v, want a lint failure first", res.Failures)
	}
	if strings.Join(files, " ") != "main.tf modules/net/variables.tf" {
		t.Errorf("files %q, want main.tf and modules/net/variables.tf only", files)
	}

	// With no file after it, the echoed command starts no list at all.
	quiet := "Run terraform fmt -check\n  terraform fmt -check\n  shell: /usr/bin/bash -e {0}\nTerraform has been successfully initialized!\nRunning plan in the remote backend.\nPlan: 1 to add\nstate.tf\n"
	for _, f := range analyzeString(t, quiet, Options{ignoreExitStatus: true}).Failures {
		if f.Category == Lint {
			t.Errorf("reported %q from %q", f.Title, f.Excerpt[0])
		}
	}
}

// BuildKit's recap of a failed step puts the elapsed seconds before each
// line; inside it the rules see the tool's own lines.
func TestBuildkitRecap(t *testing.T) {
	log := cmdLog("docker buildx build .",
		"#14 [build 5/6] RUN npm run build",
		"#14 3.204 > app@1.0.0 build",
		"------",
		" > [build 5/6] RUN npm run build:",
		"3.204 > app@1.0.0 build",
		"3.911 src/app.go:12:5: undefined: frobnicate",
		"------",
		"ERROR: failed to solve: process \"/bin/sh -c npm run build\" did not complete successfully: exit code: 1")
	res := analyzeString(t, log, Options{})
	if len(res.Failures) == 0 {
		t.Fatal("no failure")
	}
	f := res.Failures[0]
	if f.Category != Compile || len(f.Locations) == 0 || f.Locations[0] != (Location{Path: "src/app.go", Line: 12, Column: 5}) {
		t.Errorf("got [%s] %q at %+v, want the compile error at src/app.go:12:5", f.Category, f.Title, f.Locations)
	}
	// Outside a recap a line starting with a number keeps it.
	res = analyzeString(t, cmdLog("./bench", "12.50 ms/op", "3.5 src/x.go:1:1: undefined: y"), Options{})
	for _, f := range res.Failures {
		if strings.HasPrefix(f.Excerpt[0], "src/x.go") {
			t.Errorf("prefix removed outside a recap: %q", f.Excerpt[0])
		}
	}
}

func TestLooksDiagnostic(t *testing.T) {
	for line, want := range map[string]bool{
		"lib/docker_hub.ex:6: Invalid type specification": true,
		"test.txt:0: compatability  ==> compatibility":    true,
		"  src/a.kt:29:1: Wildcard import":                true,
		"/abs/path/x.cpp:24:23: error: code should be":    true,
		"src/a.c:3:1: warning: unused variable":           false,
		"src/a.c:3:1: note: declared here":                false,
		"12:30:01: starting":                              false, // a clock, not a path
		"Makefile:12: recipe for target 'all' failed":     false, // no extension: too vague
		"see https://example.com/docs:80 for details":     false,
		"README.md has no line":                           false,
		"a.b:12":                                          false, // nothing after it
		"main.go:12:5 missing colon before the message":   false,
	} {
		if got := looksDiagnostic([]byte(line)); got != want {
			t.Errorf("looksDiagnostic(%q) = %v, want %v", line, got, want)
		}
	}
}

func TestLineLocation(t *testing.T) {
	for line, want := range map[string]string{
		`Error: src/app/x.component.html:30:7 - error NG8001: 'a' is not a known element`:  "src/app/x.component.html:30",
		`   --> /home/u/std/node/assert.ts:226:7`:                                          "/home/u/std/node/assert.ts:226",
		`render failed: "/srv/site/layouts/single.html:37:10": execute of template failed`: "/srv/site/layouts/single.html:37",
		`  on main.tf line 82:`:                "main.tf:82",
		`Error: x.nim(88, 15) Error: mismatch`: "x.nim:88",
		`no location here`:                     "",
		`fetching https://example.com/a.md:12`: "",
	} {
		got := ""
		if v := lineLocation(line); v != nil {
			got = v["path"] + ":" + v["line"]
		}
		if got != want {
			t.Errorf("lineLocation(%q) = %q, want %q", line, got, want)
		}
	}
}

// TestGenericShapes checks the round-7 generic mechanisms end to end on
// formats no rule knows.
func TestGenericShapes(t *testing.T) {
	tests := []struct {
		name, log, root string
		category        Category
		loc             *Location
	}{
		{
			name: "a diagnostic-shaped line without an error word is the root",
			log: cmdLog("dialyzer --plt x.plt ebin",
				"  Proceeding with analysis...",
				"lib/app.ex:6: Invalid type specification for function 'App':hello/0",
				"done (warnings were emitted)"),
			root: "lib/app.ex:6: Invalid type specification for function 'App':hello/0", category: Typecheck,
			loc: &Location{Path: "lib/app.ex", Line: 6},
		},
		{
			name: "a checker's count of problems, its category from the command",
			log: cmdLog("tflint --recursive",
				"2 issue(s) found:",
				"",
				"Warning: Interpolation-only expressions are deprecated (terraform_deprecated_interpolation)",
				"",
				"  on modules/db/main.tf line 12:"),
			root: "2 issue(s) found:", category: Lint,
			loc: &Location{Path: "modules/db/main.tf", Line: 12},
		},
		{
			name: "a compiler-shaped error from a formatter is a lint",
			log: cmdLog("clang-format --dry-run --Werror src/a.cpp",
				"src/a.cpp:24:23: error: code should be clang-formatted [-Wclang-format-violations]"),
			root: "src/a.cpp:24:23: error: code should be clang-formatted [-Wclang-format-violations]", category: Lint,
			loc: &Location{Path: "src/a.cpp", Line: 24, Column: 23},
		},
		{
			name: "the error line's words beat the deployment command",
			log: cmdLog("pulumi up --yes",
				"Diagnostics:",
				"  aws:ec2:NatGateway (nat-1):",
				"    error: Plan apply failed: transport is closing"),
			root: "    error: Plan apply failed: transport is closing", category: Network,
		},
		{
			name: "a non-zero exit status is an error line",
			log: cmdLog("vagrant up",
				"[default] Configuring and enabling network interfaces...",
				"The following SSH command responded with a non-zero exit status.",
				"Vagrant assumes that this means the command failed!"),
			root: "The following SSH command responded with a non-zero exit status.", category: Unknown,
		},
		{
			name: "an audit's call stacks are not compile errors",
			log: cmdLog("govulncheck ./...",
				"Vulnerability #1: GO-2022-0524",
				"  Call stacks in your code:",
				"      pkg/k/client.go:263:30: k.Client.Verify calls io/ioutil.ReadAll"),
			root: "      pkg/k/client.go:263:30: k.Client.Verify calls io/ioutil.ReadAll", category: Dependency,
			loc: &Location{Path: "pkg/k/client.go", Line: 263, Column: 30},
		},
		{
			name: "a compiler-shaped error with no location comes after the first error line",
			log: cmdLog("just check",
				"[ERROR] failed to load advisory database: parse error",
				"unsupported version: 4.0",
				"error: Recipe `check` failed on line 45 with exit code 1"),
			root: "[ERROR] failed to load advisory database: parse error", category: Config,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkFirstFailure(t, tt.log, tt.category, tt.root, tt.loc) })
	}
}

// TestClockPrefixKeepsIndentation: Jenkins' timestamper puts two blanks
// after the time; blanks after those are the line's own.
func TestClockPrefixKeepsIndentation(t *testing.T) {
	log := strings.Join([]string{
		"17:23:00  + python3 -m yamllint .",
		"17:23:08  ./playbooks/nuke.yml",
		"17:23:08    3:17      error    truthy value should be one of [false, true]  (truthy)",
	}, "\n") + "\n"
	res := analyzeString(t, log, Options{})
	if len(res.Failures) == 0 {
		t.Fatal("no failure")
	}
	f := res.Failures[0]
	if f.Category != Lint || len(f.Locations) == 0 || f.Locations[0].Path != "./playbooks/nuke.yml" && f.Locations[0].Path != "playbooks/nuke.yml" || f.Locations[0].Line != 3 {
		t.Errorf("got %s %+v, want lint at playbooks/nuke.yml:3", f.Category, f.Locations)
	}
}

// Round 8: an error line that only announces the error (a heading ending
// in a colon, or a bare code) takes the next non-blank line into its root
// and title; the category may come from the lines under the root; make's
// summary names the failed target's recipe and its words categorise it; an
// exit summary does not hide the first error after the command.
func TestGenericHeadings(t *testing.T) {
	tests := []struct {
		name, log, title, root string
		cat                    Category
		loc                    string
	}{
		{"bare code", cmdLog("npx prisma migrate deploy", "Error: P3009", "", "migrate found failed migrations in the target database, new migrations will not be applied."),
			"Error: P3009 migrate found failed migrations", "migrate found failed migrations", Config, ""},
		{"colon heading", cmdLog("bundle exec rake db:migrate", "rake aborted!", "StandardError: An error has occurred, this and all later migrations canceled:", "", "PG::UndefinedTable: ERROR:  relation \"users\" does not exist"),
			"StandardError: An error has occurred", "relation \"users\" does not exist", Unknown, ""},
		{"fallback heading under compose", cmdLog("docker-compose up", "liquibase_1  | Unexpected error running Liquibase: Validation Failed:", "liquibase_1  |      2 change sets had duplicate identifiers", "liquibase_1 exited with code 255"),
			"Unexpected error running Liquibase: Validation Failed: 2 change sets", "duplicate identifiers", Config, ""},
		{"category from the lines under the root", cmdLog("java -jar app.jar", "ERROR 1 --- [main] o.s.boot.SpringApplication : Application run failed", "", "org.flywaydb.core.api.exception.FlywayValidateException: Validate failed: Migrations have failed validation"),
			"Application run failed", "Application run failed", Config, ""},
		{"make target", cmdLog("make ci", "make[1]: *** [Makefile:267: check-license-headers] Error 1"),
			"check-license-headers", "check-license-headers", Lint, "Makefile:267"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := analyzeString(t, tc.log, Options{})
			if len(res.Failures) == 0 {
				t.Fatalf("no failure: %+v", res)
			}
			f := res.Failures[0]
			if !strings.Contains(f.Title, tc.title) {
				t.Errorf("title %q, want it to contain %q", f.Title, tc.title)
			}
			if !strings.Contains(strings.Join(f.Excerpt, "\n"), tc.root) {
				t.Errorf("excerpt %q lacks %q", f.Excerpt, tc.root)
			}
			if f.Category != tc.cat {
				t.Errorf("category %s, want %s", f.Category, tc.cat)
			}
			if tc.loc != "" && (len(f.Locations) == 0 || fmt.Sprintf("%s:%d", f.Locations[0].Path, f.Locations[0].Line) != tc.loc) {
				t.Errorf("locations %+v, want %s", f.Locations, tc.loc)
			}
		})
	}
	// A flyway checksum mismatch is not a Go module error.
	res := analyzeString(t, cmdLog("flyway migrate", "ERROR: Validate failed: Migration checksum mismatch for migration version 1.8"), Options{})
	if len(res.Failures) == 0 || res.Failures[0].Category != Config || res.Failures[0].Rule == "go-dependency" {
		t.Errorf("flyway: %+v", res.Failures)
	}
}

// A copied Azure Pipelines log has no exit line: the lines the runner
// marked "##[error]" are its errors, even without an error word.
func TestMarkedErrorLines(t *testing.T) {
	log := "There were errors in your deployment.\n##[error]The template deployment 'x' is not valid according to the validation procedure.\n##[error]Task failed while creating or updating the template deployment.\n"
	res := analyzeString(t, log, Options{})
	if len(res.Failures) == 0 {
		t.Fatalf("no failure: %+v", res)
	}
	if f := res.Failures[0]; f.Category != Config || !strings.Contains(f.Excerpt[0], "is not valid according to") {
		t.Errorf("got [%s] %q", f.Category, f.Excerpt)
	}
	if res := analyzeString(t, "2024-01-01T00:00:00.0000000Z ##[section]Starting: build\nall good\n", Options{}); len(res.Failures) > 0 {
		t.Errorf("unmarked log reported %+v", res.Failures)
	}
}

// A failure no rule explains whose root or following lines state a failed
// assertion is a test's failure, whatever the command was called.
func TestInferCategoryAssertion(t *testing.T) {
	for _, c := range []struct {
		root, after []string
		want        Category
	}{
		{[]string{"Failure:"}, []string{"TestKramdown#test_x [test/test_kramdown.rb:106]", "Minitest::Assertion: Expected true to not be truthy."}, Test},
		{[]string{"thread 'vttest_tab_clear_set' panicked at 'Ref test failed; grid doesn't match'"}, nil, Test},
		{[]string{"AssertionError: expected 1 to equal 2"}, nil, Test},
		{[]string{"error: assertion of the build cache key"}, nil, Unknown},
	} {
		if got := inferCategory(&finding{root: c.root, after: c.after, command: "ci/script.sh"}); got != c.want {
			t.Errorf("%q %q: %s, want %s", c.root, c.after, got, c.want)
		}
	}
}

// checkFirstFailure analyses log and checks its first failure's category,
// first excerpt line and, when loc is set, first location.
func checkFirstFailure(t *testing.T, log string, category Category, root string, loc *Location) {
	t.Helper()
	res := analyzeString(t, log, Options{})
	if len(res.Failures) == 0 {
		t.Fatal("no failure")
	}
	f := res.Failures[0]
	if f.Category != category {
		t.Errorf("category %s, want %s (%q)", f.Category, category, f.Title)
	}
	if f.Excerpt[0] != root {
		t.Errorf("excerpt starts %q, want %q", f.Excerpt[0], root)
	}
	if loc != nil && (len(f.Locations) == 0 || f.Locations[0] != *loc) {
		t.Errorf("locations %+v, want %+v first", f.Locations, *loc)
	}
}
