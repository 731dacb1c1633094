package classify

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"

	"github.com/kitewatch/kitewatch/internal/logparse"
)

// The generic fallback: what the analyser says about a failed command when
// no rule knows the tool's format. It looks at the output of the command
// that failed (the first error-like line after the last "$ command", or the
// whole output when it is short) and infers the category from the failing
// command's tool and words ("cabal build", "pre-commit", "make test"), the
// group header and the error line itself.

// fallbackLines bounds the lines kept of the current command's output.
const fallbackLines = 14

// cmdOutput follows the output of the current command.
type cmdOutput struct {
	first      []string // the first non-blank lines
	errLine    int      // line number of the first error-like line, 0 if none
	errSection string
	err        []string // the first error-like line and the lines after it
}

func (o *cmdOutput) reset() {
	o.first, o.err, o.errLine, o.errSection = o.first[:0], o.err[:0], 0, ""
}

// feed records a non-blank text line of the command's output; errLike says
// whether it is the first error-like line (see noteErrLine).
func (o *cmdOutput) feed(ln *logparse.Line, errLike bool) {
	if isBlank(ln.Text) {
		return
	}
	if len(o.first) < fallbackLines {
		o.first = append(o.first, excerptLine(ln.Text))
	}
	switch {
	case o.errLine > 0:
		if len(o.err) < fallbackLines {
			o.err = append(o.err, excerptLine(ln.Text))
		}
	case errLike:
		o.errLine, o.errSection = ln.Number, ln.Section
		o.err = append(o.err[:0], excerptLine(ln.Text))
	}
}

func (o *cmdOutput) snapshot() cmdOutput {
	return cmdOutput{
		first: append([]string(nil), o.first...), errLine: o.errLine, errSection: o.errSection,
		err: append([]string(nil), o.err...),
	}
}

// errLineRule is the rule (Action "errline") whose literals and pattern say
// that a line looks like an error; it never starts a failure itself.
func (a *analysis) isErrLine(t []byte) bool {
	r := a.e.rules[a.e.errRule]
	if r.not != nil && r.not.Match(t) {
		return false
	}
	return r.re.Match(t) || looksDiagnostic(t)
}

// foreignExit recognises the line another CI system prints when a step's
// command fails, in logs copied from it: CircleCI, GitHub Actions, GitLab,
// Jenkins, Travis and Airflow. It returns the exit status (0 when the line does not
// say a command failed).
func foreignExit(t []byte) int {
	var rest []byte
	switch {
	case bytes.HasPrefix(t, []byte("Exited with code ")):
		rest = bytes.TrimPrefix(t[len("Exited with code "):], []byte("exit status "))
	case bytes.HasPrefix(t, []byte("Error: Process completed with exit code ")):
		rest = t[len("Error: Process completed with exit code "):]
	case bytes.HasPrefix(t, []byte("ERROR: Job failed: exit code ")):
		rest = t[len("ERROR: Job failed: exit code "):]
	case bytes.HasPrefix(t, []byte("ERROR: script returned exit code ")):
		rest = t[len("ERROR: script returned exit code "):]
	case bytes.HasPrefix(t, []byte("Command exited with return code ")):
		// Airflow's subprocess hook (a dbt or shell task).
		rest = t[len("Command exited with return code "):]
	case bytes.HasPrefix(t, []byte("Error: The process '")):
		// @actions/exec in a GitHub Action: "Error: The process
		// '/usr/bin/az' failed with exit code 2".
		i := bytes.LastIndex(t, []byte("' failed with exit code "))
		if i < 0 {
			return 0
		}
		rest = t[i+len("' failed with exit code "):]
	case bytes.HasPrefix(t, []byte(`The command "`)) || bytes.HasPrefix(t, []byte("travis_")):
		if _, st := travisExit(t); st != 0 {
			return st
		}
		return 0
	default:
		return 0
	}
	rest = bytes.TrimRight(bytes.TrimSpace(rest), ".")
	n, err := strconv.Atoi(string(rest))
	if err != nil || n == 0 {
		return 0
	}
	return n
}

// travisExit recognises Travis CI's line for a failed step, `The command
// "npm test" exited with 1.`, also when a stored log glued Travis's
// invisible timing marker to its front ("travis_time:end:…,duration=N" and
// the line on one line once the carriage returns and colour codes are
// gone). It returns the command and the status (0 when the line is not one,
// or the command succeeded).
func travisExit(t []byte) (string, int) {
	if bytes.HasPrefix(t, []byte("travis_")) {
		i := bytes.Index(t, []byte(`The command "`))
		if i < 0 || !bytes.HasPrefix(t, []byte("travis_time:end:")) && !bytes.HasPrefix(t, []byte("travis_fold:")) {
			return "", 0
		}
		t = t[i:]
	}
	if !bytes.HasPrefix(t, []byte(`The command "`)) {
		return "", 0
	}
	i := bytes.LastIndex(t, []byte(`" exited with `))
	if i < len(`The command "`) {
		return "", 0
	}
	rest := bytes.TrimRight(bytes.TrimSpace(t[i+len(`" exited with `):]), ".")
	n, err := strconv.Atoi(string(rest))
	if err != nil || n == 0 {
		return "", 0
	}
	return string(t[len(`The command "`):i]), n
}

// toolCategories infers a category from the words of the command that
// failed (flags and quoted arguments removed), or of its group header: the
// first entry with a matching word wins, so "zig build test" is a test and
// "make deploy" a deployment (config). Docker and compose commands say
// nothing about what failed inside them.
var toolCategories = []struct {
	category Category
	re       *regexp.Regexp
}{
	// Supply-chain audits check dependencies, whatever their subcommand
	// says ("cargo deny check", "npm audit").
	{Dependency, auditWords},
	// License and copyright header checks are lint, even when the step
	// is called "check-license-headers".
	{Lint, scriptWords(`licen[cs]es?|license-headers?|licen[cs]e-check(?:er)?|copyright|spdx|addlicense|reuse`)},
	{Test, toolWords(`tests?|specs?|check|assert|lhci|lighthouse|pytest|py\.test|unittest|nosetests|jest|vitest|mocha|jasmine|karma|ava|rspec|minitest|phpunit|pest|prove|ctest|cucumber|behave|playwright|cypress|eunit|ct|runtests?|k6|gotestsum|nextest|tox|nox|bats|xctest|detox|maestro`)},
	// A script named after its tests ("test-integration.sh",
	// "tests_e2e.py") runs tests.
	{Test, scriptWords(`tests?|specs?`)},
	{Lint, toolWords(`lint|linter|eslint|tslint|stylelint|ruff|flake8|pylint|pycodestyle|pydocstyle|rubocop|standardrb|staticcheck|vet|clippy|shellcheck|hadolint|markdownlint|markdownlint-cli2|mdl|commitlint|pre-commit|prek|lefthook|fmt|format|prettier|black|isort|gofmt|gofumpt|rustfmt|ktlint|detekt|checkstyle|spotless|yamllint|actionlint|tflint|cspell|codespell|vale|swiftlint|swiftformat|credo|biome|oxlint|dprint|buf|editorconfig-checker|license-checker|ansible-lint|gitleaks|trufflehog|detect-secrets|semgrep|bandit|gosec|brakeman|checkov|tfsec|kics|terrascan|clang-tidy|cppcheck|cpplint|hlint|ormolu|scalafmt|scalastyle|phpcs|php-cs-fixer|stylua|luacheck|sqlfluff|htmlhint|lychee|markdown-link-check`)},
	{Typecheck, toolWords(`tsc|mypy|pyright|typecheck|type-check|types|flow|dialyzer|sorbet|srb|psalm|phpstan`)},
	{Config, nil}, // the command's first word is a deployment tool (configTool)
	{Dependency, subcommandWords(`install|ci|restore|deps|dependencies|update|fetch|download|resolve|sync|vendor|lock|bundle|conda|mamba|micromamba|pod|carthage`)},
	{Config, scriptWords(`alembic|flyway|liquibase|dbmate|sqitch|deploy|apply|plan|provision|packer|terraform|tofu|terragrunt|pulumi|cdk|sls|serverless|kubectl|kustomize|helm|helmfile|ansible|ansible-playbook|semantic-release|release-please|changeset|codecov\w*|upload|sam|cloudformation|eb|fly|vercel|netlify|firebase|gcloud|aws|az|kubeconform|kubeval|conftest`)},
	{Compile, toolWords(`build|compile|make|gmake|assemble|cmake|ninja|meson|scons|bazel|xcodebuild|gcc|g\+\+|clang|clang\+\+|cc|javac|kotlinc|scalac|ghc|cabal|stack|dune|ocamlfind|cargo|zig|swift|swiftc|msbuild|dotnet|mvn|gradle|gradlew|sbt|mix|rebar3|nim|crystal|go|rustc|tsup|esbuild|webpack|vite|rollup|next|nuxt|ng|hugo|jekyll|mkdocs|sphinx-build|docusaurus|gatsby|eleventy|astro|hexo|zola|pelican|fastlane|gym`)},
}

// subcommandWords matches one of the words as a word of a command, not as
// a script name ("npm ci" is an install, "./ci.sh" is not).
func subcommandWords(words string) *regexp.Regexp {
	return regexp.MustCompile(`(?i)(?:^|[\s:/+_@-])(?:` + words + `)(?:$|[\s:])`)
}

// toolWords matches one of the words as a word of a command: after a
// space, slash, colon, plus, dash or underscore, and before a space, colon
// or the end, optionally as a script name ("run-tests.sh").
func toolWords(words string) *regexp.Regexp {
	return regexp.MustCompile(`(?i)(?:^|[\s:/+_@-])(?:` + words + `)(?:\.(?:sh|bash|py|js|mjs|cjs|ts|rb|pl|ps1|R|jl))?(?:$|[\s:])`)
}

// scriptWords is toolWords that also matches a script named after the
// word and more ("deploy-dmz.sh", "license_check.py"); a "check-x.sh"
// says too little to be a test.
func scriptWords(words string) *regexp.Regexp {
	return regexp.MustCompile(`(?i)(?:^|[\s:/+_@-])(?:` + words + `)(?:(?:[-_][\w-]*)?\.(?:sh|bash|py|js|mjs|cjs|ts|rb|pl|ps1|R|jl))?(?:$|[\s:])`)
}

// auditWords are supply-chain audits: they check dependencies.
var auditWords = subcommandWords(`deny|cargo-deny|audit|pip-audit|osv-scanner|snyk|grype|safety|dependency-check|govulncheck|nancy`)

var (
	// cmdWrapper is a runner that only starts the real tool ("bundle exec
	// jekyll build" is a Jekyll build, not a bundle install).
	cmdWrapper = regexp.MustCompile(`(?i)^\s*(?:(?:sudo|time|env(?:\s+\w+=\S*)+|bundle exec|npx|bunx|pnpm (?:exec|dlx)|yarn dlx|poetry run|uv run|uvx|pipenv run|hatch run|pdm run|python3? -m|go run|dotnet tool run)\s+)+`)
	// camelWord splits a task name ("ktlintFormat", "lintDebug") into words.
	camelWord  = regexp.MustCompile(`([a-z0-9])([A-Z])`)
	configTool = regexp.MustCompile(`(?i)^\s(?:terraform|tofu|terragrunt|pulumi|cdk|sls|serverless|kubectl|kustomize|helm|helmfile|ansible-playbook|packer|gcloud|aws|az|fly|vercel|netlify|firebase)\s$`)
	cmdFlag    = regexp.MustCompile(`(?:^|\s)--?[\w-]+(?:=\S*)?`)
	cmdQuoted  = regexp.MustCompile(`"[^"]*"|'[^']*'`)
	cmdDocker  = regexp.MustCompile(`(?i)^\s*(?:sudo\s+)?(?:docker(?:-compose)?|podman|buildah|nerdctl)\b`)
)

// commandCategory infers the category of a failure from the command that
// produced it. It returns Unknown when the command says nothing.
func commandCategory(cmd string) Category {
	if cmd == "" || cmdDocker.MatchString(cmd) {
		return Unknown
	}
	cmd = cmdQuoted.ReplaceAllString(cmd, " ")
	cmd = cmdFlag.ReplaceAllString(cmd, " ")
	cmd = cmdWrapper.ReplaceAllString(cmd, " ")
	cmd = camelWord.ReplaceAllString(cmd, "$1 $2")
	for _, tc := range toolCategories {
		if tc.re == nil {
			// A deployment tool's subcommands ("pulumi update", "helm
			// dependency update") are about the deployment, not about
			// installing packages; "helm lint" is still a lint.
			if f := strings.Fields(cmd); len(f) > 0 && configTool.MatchString(" "+f[0]+" ") {
				return Config
			}
			continue
		}
		if tc.re.MatchString(cmd) {
			return tc.category
		}
	}
	return Unknown
}

// lineCategories infer a category from the words of the root-cause line of
// a failure no rule explains.
var lineCategories = []struct {
	category Category
	re       *regexp.Regexp
}{
	{Timeout, regexp.MustCompile(`(?i)\btimed out\b|\btimeout\b|\bdeadline exceeded\b`)},
	{OOM, regexp.MustCompile(`(?i)\bout of memory\b|\bOOMKilled\b`)},
	{Network, regexp.MustCompile(`(?i)\btransport is closing\b|\bconnection (?:reset|refused|closed)(?: by peer)?\b|\bbroken pipe\b|\bnetwork is unreachable\b|\bcould not resolve host\b|\bname resolution\b|\bno such host\b|\bConnection(?:Refused|Reset|Aborted)Error\b|\bECONN(?:REFUSED|RESET)\b`)},
	{Config, regexp.MustCompile(`(?i)\binvalid (?:config(?:uration)?|option|argument|token|credentials?)s?\b|\bmissing (?:required )?(?:config(?:uration)?|option|argument|token|credentials?|environment variable)s?\b|\bno \w+ to use\b|\bnot configured\b|\bunauthori[sz]ed\b|\bforbidden\b|\baccess denied\b|\bauthentication failed\b|\b(?:required|mandatory) (?:field|parameter|property|setting|variable)\b|\bproblem validating schema\b|\bdoes not validate with\b|\bfailed validation\b|\bfailed to (?:load|parse) (?:the )?(?:[\w-]+ )?(?:config(?:uration)?|database|manifest|settings|schema)\b|\bvalidat(?:e|ion) failed\b|\bfailed migrations?\b|\bnot valid according to\b|\bis not a valid value\b|\b(?:UPGRADE|INSTALLATION|ROLLBACK) FAILED\b|\banother operation \(install/upgrade/rollback\) is in progress\b`)},
	// A failed assertion ("Minitest::Assertion: Expected true…",
	// "AssertionError", "Ref test failed") is a test's failure.
	{Test, regexp.MustCompile(`\bAssertion(?:Error|FailedError)?:|\b[Aa]ssertion failed\b|\b[Tt]est failed\b`)},
	{Compile, regexp.MustCompile(`(?i)\berror building\b|\bbuild failed\b|\bfailed to (?:compile|build)\b`)},
	{Lint, regexp.MustCompile(`(?i)\b[1-9]\d* violations?\b|\bviolation\(s\)`)},
}

// inferCategory gives a failure no rule categorised a category from its
// root line, its command and its group header.
func inferCategory(f *finding) Category {
	// The root lines first (an error heading and the line it announces),
	// then the first lines after them: "Application run failed" says
	// nothing, the exception under it does.
	lines := f.root
	if n := min(len(f.after), inferAfterLines); n > 0 {
		lines = append(lines[:len(lines):len(lines)], f.after[:n]...)
	}
	for _, l := range lines {
		for _, lc := range lineCategories {
			if lc.re.MatchString(l) {
				return lc.category
			}
		}
	}
	if c := commandCategory(f.command); c != Unknown {
		return c
	}
	return commandCategory(sectionWords(f.section))
}

// inferAfterLines bounds the lines after the root that inferCategory reads.
const inferAfterLines = 6

// sectionWords turns a group header into words: emoji codes (":hammer:")
// and punctuation go.
func sectionWords(s string) string {
	s = emojiCode.ReplaceAllString(s, " ")
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '(' || r == ')' || r == '[' || r == ']' || r == ',' {
			return ' '
		}
		return r
	}, s)
}

var emojiCode = regexp.MustCompile(`:[a-z0-9_+-]+:`)

// isHeading reports whether a generic error line only announces the error
// the next line states: it ends with a colon ("StandardError: An error has
// occurred, this and all later migrations canceled:") or its message is a
// bare code ("Error: P3009").
func isHeading(text, msg string) bool {
	if strings.HasSuffix(strings.TrimSpace(text), ":") {
		return true
	}
	msg = strings.TrimSpace(msg)
	return msg != "" && len(msg) <= 12 && !strings.ContainsAny(msg, " \t") && strings.ContainsAny(msg, "0123456789")
}

// headingTitle joins a heading and the line it announces.
func headingTitle(root []string) string {
	t := strings.Join(strings.Fields(strings.TrimSpace(root[0])+" "+strings.TrimSpace(root[1])), " ")
	if len(t) > 200 {
		t = t[:197] + "..."
	}
	return t
}

// isGenericRule says the rule only knows that a line looks like an error.
func isGenericRule(id string) bool { return id == "error-colon" || id == "node-uncaught" }

// onlyGeneric reports whether the findings are all generic error lines
// (rules error-colon and node-uncaught) that come after line errLine.
func onlyGeneric(fs []*finding, errLine int) bool {
	if len(fs) == 0 {
		return false
	}
	for _, f := range fs {
		demoted := f.rule.RequireLoc && len(f.locs) == 0
		// An exit summary ("make: *** [x] Error 1", "svc exited with
		// code 1") says where the job stopped, not why.
		summary := f.secondary && (f.rule.ID == "make" || f.rule.ID == "compose-exited")
		if !(isGenericRule(f.rule.ID) || demoted || summary) || f.first <= errLine {
			return false
		}
	}
	return true
}

// rootLocation finds a "path:line" (or "path(line, col)", or Terraform's
// and tflint's "on path line N") in a line a generic failure points at: the
// path may be absolute or quoted ("/work/x/layouts/a.html:37:10"), it
// needs an extension.
var rootLocation = regexp.MustCompile(`(?:^|[\s(\["'])(?P<path>/?(?:[\w.@-]+/)*[\w@-][\w.@-]*\.[A-Za-z][\w]{0,6})(?::(?P<line>\d+)(?::(?P<col>\d+))?|\((?P<line2>\d+)(?:, ?(?P<col2>\d+))?\))|\bon (?P<path3>(?:[\w.@-]+/)*[\w@-][\w.@-]*\.[A-Za-z]\w{0,6}) line (?P<line3>\d+)\b`)

// lineLocation returns the first location rootLocation finds in l, with
// the capture groups merged, or nil.
func lineLocation(l string) map[string]string {
	m := rootLocation.FindStringSubmatch(l)
	if m == nil {
		return nil
	}
	vars := map[string]string{}
	for i, name := range rootLocation.SubexpNames() {
		if name != "" && m[i] != "" {
			vars[strings.TrimRight(name, "23")] = m[i]
		}
	}
	vars["path"] = strings.TrimPrefix(vars["path"], "./")
	if isLibraryPath(vars["path"]) || strings.HasPrefix(vars["path"], "http") {
		return nil
	}
	return vars
}

// genericLocation gives a failure that no rule located the first location
// printed in its root line, else in the rest of its excerpt: the fallback,
// generic error lines and problem counts point at files in shapes no rule
// knows ("Error: src/app/x.html:30:7 - error NG8001", "  --> /x/a.ts:226:7",
// "on main.tf line 82:").
func (a *analysis) genericLocation(f *finding) {
	if len(f.locs) > 0 {
		return
	}
	for _, part := range [][]string{f.root, f.before, f.after} {
		for _, l := range part {
			if vars := lineLocation(l); vars != nil {
				f.addLoc(a, vars)
				return
			}
		}
	}
	// A validator's "file.yaml - Kind name is invalid: ..." or "file.yaml:
	// msg" names the file without a line.
	if len(f.root) > 0 {
		if m := pathLead.FindStringSubmatch(f.root[0]); m != nil && !isLibraryPath(m[1]) {
			f.addLoc(a, map[string]string{"path": strings.TrimPrefix(m[1], "./")})
		}
	}
}

var pathLead = regexp.MustCompile(`^\s*((?:[\w.@-]+/)*[\w@-][\w.@-]*\.(?:ya?ml|json|toml|tf|hcl|xml|md|ini|cfg|conf|properties|gradle|lock))(?: - |: )`)

// looksDiagnostic reports whether a line has the shape of a tool's
// diagnostic, "path.ext:line: message" or "path.ext:line:col: message", at
// its start: in a failed command's output such a line is error-like even
// without an error word (dialyzer, codespell, ktlint). Warnings and notes
// are not.
func looksDiagnostic(t []byte) bool {
	i := 0
	for i < len(t) && (t[i] == ' ' || t[i] == '\t') {
		i++
	}
	start, dot := i, false
	for i < len(t) {
		c := t[i]
		if c == '.' && i > start {
			dot = true
		} else if !(c == '/' || c == '-' || c == '_' || c == '@' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			break
		}
		i++
	}
	if !dot || i == start || i >= len(t) || t[i] != ':' {
		return false
	}
	i++
	d := i
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == d || i >= len(t) {
		return false
	}
	if t[i] == ':' && i+1 < len(t) && t[i+1] >= '0' && t[i+1] <= '9' {
		i++
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
	}
	if i+1 >= len(t) || t[i] != ':' || t[i+1] != ' ' {
		return false
	}
	rest := bytes.TrimLeft(t[i+1:], " ")
	return !bytes.HasPrefix(rest, []byte("warning")) && !bytes.HasPrefix(rest, []byte("note")) && !bytes.HasPrefix(rest, []byte("info")) && !bytes.HasPrefix(rest, []byte("Warning"))
}
