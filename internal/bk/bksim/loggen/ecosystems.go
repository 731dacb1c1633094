package loggen

import (
	"fmt"
	"math/rand/v2"
)

type failure struct {
	summary string
	exit    int
	lines   func(r *rand.Rand) []string
}

type ecosystem struct {
	command      string
	repo         string
	failures     map[string]failure
	failureOrder []string
	// pass returns the closing block of a passing build.
	pass func(r *rand.Rand) []string
	// filler returns one line of ordinary build output; i < 0 asks for the
	// padding line. Filler mixes in decoys ("error" in names, "0 errors",
	// warnings, retried-then-passed tests) so that passing logs are not
	// trivially clean.
	filler func(r *rand.Rand, i int) string
}

var ecosystemOrder = []string{"go", "js", "python", "ruby", "rust", "jvm", "docker", "infra"}

var (
	goPkgs   = []string{"internal/checkout", "internal/billing", "internal/auth", "internal/errorpage", "internal/store", "cmd/api", "internal/queue", "internal/errors"}
	goTests  = []string{"TestCheckout", "TestRefundFlow", "TestErrorHandler", "TestLoginRateLimit", "TestStoreMigrations", "TestQueueRetry", "TestParseErrors"}
	jsFiles  = []string{"src/components/ErrorBoundary.tsx", "src/api/client.ts", "src/pages/Checkout.tsx", "src/hooks/useSession.ts", "src/utils/formatError.ts"}
	pyMods   = []string{"tests/test_billing.py", "tests/test_errors.py", "tests/api/test_views.py", "tests/test_models.py"}
	rbSpecs  = []string{"spec/models/user_spec.rb", "spec/requests/orders_spec.rb", "spec/lib/error_reporter_spec.rb", "spec/jobs/sync_job_spec.rb"}
	rsCrates = []string{"kite-core", "kite-parser", "kite-errors", "kite-cli"}
	jvmClass = []string{"com.acme.billing.InvoiceServiceTest", "com.acme.api.ErrorMapperTest", "com.acme.orders.OrderRepositoryTest"}
)

func goFiller(r *rand.Rand, i int) string {
	t := pick(r, goTests)
	switch r.IntN(12) {
	case 0:
		return fmt.Sprintf("ok  \tgithub.com/acme/api/%s\t%.3fs", pick(r, goPkgs), r.Float64()*3)
	case 1:
		return fmt.Sprintf("    %s_test.go:%d: checked 0 errors in %d cases", "error_handler", 10+r.IntN(200), r.IntN(50))
	case 2:
		return fmt.Sprintf("--- PASS: %s/case_%d (%.2fs)", t, r.IntN(500), r.Float64())
	case 3:
		return "go: downloading github.com/pkg/errors v0.9.1"
	case 4:
		return fmt.Sprintf("=== RUN   TestErrorPaths/returns_error_%d", r.IntN(300))
	case 5:
		return fmt.Sprintf("    --- PASS: TestErrorPaths/returns_error_%d (0.00s)", r.IntN(300))
	case 6:
		return fmt.Sprintf("\x1b[33mwarning:\x1b[0m %s.go:%d: deprecated call to ioutil.ReadAll", pick(r, goPkgs), 1+r.IntN(400))
	default:
		return fmt.Sprintf("=== RUN   %s/case_%d", t, r.IntN(500))
	}
}

func jsFiller(r *rand.Rand, i int) string {
	switch r.IntN(8) {
	case 0:
		return fmt.Sprintf("\x1b[32m PASS \x1b[39m %s", pick(r, jsFiles[:4])+".test")
	case 1:
		return fmt.Sprintf("  ✓ renders ErrorBoundary fallback (%d ms)", r.IntN(90))
	case 2:
		return "✔ No ESLint warnings or errors"
	case 3:
		return fmt.Sprintf("npm warn deprecated inflight@1.0.6: This module is not supported, and leaks memory")
	case 4:
		return fmt.Sprintf("  ✓ handles error responses from /api/orders/%d (%d ms)", r.IntN(999), r.IntN(40))
	default:
		return fmt.Sprintf("    ✓ formats currency case %d (%d ms)", r.IntN(400), r.IntN(12))
	}
}

func pyFiller(r *rand.Rand, i int) string {
	switch r.IntN(6) {
	case 0:
		return fmt.Sprintf("%s::test_error_message_%d PASSED", pick(r, pyMods), r.IntN(200))
	case 1:
		return "Success: no issues found in 214 source files"
	case 2:
		return fmt.Sprintf("%s:%d: DeprecationWarning: datetime.utcnow() is deprecated", pick(r, pyMods), r.IntN(300))
	default:
		return fmt.Sprintf("%s::test_case_%d PASSED", pick(r, pyMods), r.IntN(900))
	}
}

func rbFiller(r *rand.Rand, i int) string {
	switch r.IntN(5) {
	case 0:
		return fmt.Sprintf("ErrorReporter#notify handles timeouts (%d.%02d seconds)", r.IntN(2), r.IntN(100))
	case 1:
		return "Run options: exclude {:slow=>true}"
	default:
		return fmt.Sprintf("%s .......................................................", pick(r, rbSpecs))
	}
}

func rsFiller(r *rand.Rand, i int) string {
	switch r.IntN(6) {
	case 0:
		return fmt.Sprintf("   Compiling %s v0.%d.%d (/workdir/crates/%s)", pick(r, rsCrates), r.IntN(9), r.IntN(30), pick(r, rsCrates))
	case 1:
		return fmt.Sprintf("test errors::tests::maps_io_error_%d ... ok", r.IntN(200))
	case 2:
		return "\x1b[33mwarning\x1b[0m: unused import: `std::error::Error`"
	default:
		return fmt.Sprintf("test parser::tests::case_%d ... ok", r.IntN(800))
	}
}

func jvmFiller(r *rand.Rand, i int) string {
	switch r.IntN(6) {
	case 0:
		return fmt.Sprintf("[INFO] Tests run: %d, Failures: 0, Errors: 0, Skipped: 0, Time elapsed: %.3f s - in %s", 1+r.IntN(40), r.Float64()*4, pick(r, jvmClass))
	case 1:
		return "> Task :api:compileJava UP-TO-DATE"
	case 2:
		return "[WARNING] Using platform encoding (UTF-8 actually) to copy filtered resources"
	default:
		return fmt.Sprintf("%s > testCase%d() PASSED", pick(r, jvmClass), r.IntN(500))
	}
}

func dockerFiller(r *rand.Rand, i int) string {
	return fmt.Sprintf("#%d %.1f Get:%d http://deb.debian.org/debian bookworm/main amd64 libssl3 amd64 3.0.%d [%d kB]", 5+r.IntN(10), r.Float64()*60, r.IntN(200), r.IntN(20), 100+r.IntN(2000))
}

var ecosystems = map[string]ecosystem{
	"go": {
		command: "go test -race ./...", repo: "api",
		failureOrder: []string{"compile", "test", "panic", "race", "timeout"},
		failures: map[string]failure{
			"compile": {"go build error with file:line:col", 1, func(r *rand.Rand) []string {
				return []string{
					"# github.com/acme/api/internal/checkout",
					"internal/checkout/cart.go:57:12: undefined: taxRate",
					"internal/checkout/cart.go:88:2: cannot use total (variable of type float64) as int value in return statement",
					"FAIL\tgithub.com/acme/api/internal/checkout [build failed]",
				}
			}},
			"test": {"go test failure with file:line", 1, func(r *rand.Rand) []string {
				return []string{
					"=== RUN   TestCheckout/expired_card",
					"    checkout_test.go:87: charge: got status 500, want 402",
					"--- FAIL: TestCheckout/expired_card (0.02s)",
					"--- FAIL: TestCheckout (0.05s)",
					"FAIL",
					"FAIL\tgithub.com/acme/api/internal/checkout\t0.412s",
					"FAIL",
				}
			}},
			"panic": {"go test panic with goroutine trace", 1, func(r *rand.Rand) []string {
				return []string{
					"=== RUN   TestRefundFlow",
					"--- FAIL: TestRefundFlow (0.00s)",
					"panic: runtime error: invalid memory address or nil pointer dereference [recovered]",
					"\tpanic: runtime error: invalid memory address or nil pointer dereference",
					"[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x6f1c2a]",
					"",
					"goroutine 23 [running]:",
					"github.com/acme/api/internal/billing.(*Refunder).Refund(0x0, {0x9e2f40, 0xc0000a6000})",
					"\t/workdir/internal/billing/refund.go:42 +0x2a",
					"github.com/acme/api/internal/billing.TestRefundFlow(0xc000103a00)",
					"\t/workdir/internal/billing/refund_test.go:19 +0x65",
					"FAIL\tgithub.com/acme/api/internal/billing\t0.031s",
				}
			}},
			"race": {"go data race detected by -race", 1, func(r *rand.Rand) []string {
				return []string{
					"==================",
					"WARNING: DATA RACE",
					"Write at 0x00c0001b4010 by goroutine 9:",
					"  github.com/acme/api/internal/queue.(*Pool).grow()",
					"      /workdir/internal/queue/pool.go:71 +0x84",
					"Previous read at 0x00c0001b4010 by goroutine 8:",
					"  github.com/acme/api/internal/queue.(*Pool).Len()",
					"      /workdir/internal/queue/pool.go:33 +0x3c",
					"==================",
					"--- FAIL: TestQueueRetry (0.12s)",
					"    testing.go:1490: race detected during execution of test",
					"FAIL\tgithub.com/acme/api/internal/queue\t1.204s",
				}
			}},
			"timeout": {"go test binary timed out", 1, func(r *rand.Rand) []string {
				return []string{
					"panic: test timed out after 10m0s",
					"\trunning tests:",
					"\t\tTestStoreMigrations (10m0s)",
					"",
					"goroutine 41 [select]:",
					"github.com/acme/api/internal/store.waitForLock(...)",
					"\t/workdir/internal/store/lock.go:58 +0x1f4",
					"FAIL\tgithub.com/acme/api/internal/store\t600.021s",
				}
			}},
		},
		pass: func(r *rand.Rand) []string {
			return []string{
				"=== RUN   TestQueueRetry",
				"    queue_test.go:44: attempt 1 failed: connection refused; retrying",
				"--- PASS: TestQueueRetry (1.02s)",
				"ok  \tgithub.com/acme/api/internal/errors\t0.018s",
				"ok  \tgithub.com/acme/api/internal/queue\t1.311s",
				"PASS",
			}
		},
		filler: goFiller,
	},
	"js": {
		command: "yarn ci", repo: "web",
		failureOrder: []string{"tsc", "eslint", "jest"},
		failures: map[string]failure{
			"tsc": {"TypeScript compile errors", 2, func(r *rand.Rand) []string {
				return []string{
					"$ tsc --noEmit -p tsconfig.json",
					"src/pages/Checkout.tsx(42,17): error TS2322: Type 'string | undefined' is not assignable to type 'string'.",
					"src/api/client.ts(118,5): error TS2345: Argument of type 'number' is not assignable to parameter of type 'RequestInit'.",
					"",
					"Found 2 errors in 2 files.",
					"error Command failed with exit code 2.",
				}
			}},
			"eslint": {"ESLint errors", 1, func(r *rand.Rand) []string {
				return []string{
					"/workdir/src/hooks/useSession.ts",
					"  12:7   error  'token' is assigned a value but never used  @typescript-eslint/no-unused-vars",
					"  31:15  error  React Hook useEffect has a missing dependency: 'refresh'  react-hooks/exhaustive-deps",
					"",
					"✖ 2 problems (2 errors, 0 warnings)",
					"error Command failed with exit code 1.",
				}
			}},
			"jest": {"Jest test failure with expect diff", 1, func(r *rand.Rand) []string {
				return []string{
					"\x1b[31m FAIL \x1b[39m src/pages/Checkout.test.tsx",
					"  ● Checkout › shows an error when the card is declined",
					"",
					"    expect(received).toHaveTextContent()",
					"",
					"    Expected element to have text content:",
					"      Your card was declined",
					"    Received:",
					"      Something went wrong",
					"",
					"      at Object.<anonymous> (src/pages/Checkout.test.tsx:58:31)",
					"",
					"Tests:       1 failed, 211 passed, 212 total",
					"error Command failed with exit code 1.",
				}
			}},
		},
		pass: func(r *rand.Rand) []string {
			return []string{
				"  ✓ retries flaky network call (attempt 2 passed) (812 ms)",
				"Test Suites: 48 passed, 48 total",
				"Tests:       212 passed, 212 total",
				"Found 0 errors. Watching for file changes.",
				"✨  Done in 84.21s.",
			}
		},
		filler: jsFiller,
	},
	"python": {
		command: "pytest -q", repo: "ml",
		failureOrder: []string{"pytest", "mypy", "pip"},
		failures: map[string]failure{
			"pytest": {"pytest assertion failure", 1, func(r *rand.Rand) []string {
				return []string{
					"=================================== FAILURES ===================================",
					"_____________________________ test_invoice_total ______________________________",
					"",
					"    def test_invoice_total():",
					"        inv = make_invoice(lines=3)",
					">       assert inv.total == Decimal(\"30.00\")",
					"E       AssertionError: assert Decimal('29.99') == Decimal('30.00')",
					"",
					"tests/test_billing.py:41: AssertionError",
					"=========================== short test summary info ============================",
					"FAILED tests/test_billing.py::test_invoice_total - AssertionError: assert Decimal('29.99') == Decimal('30.00')",
					"========================= 1 failed, 388 passed in 41.20s =========================",
				}
			}},
			"mypy": {"mypy type errors", 1, func(r *rand.Rand) []string {
				return []string{
					"app/billing.py:88: error: Incompatible return value type (got \"Optional[int]\", expected \"int\")  [return-value]",
					"app/views.py:12: error: Module \"app.models\" has no attribute \"Invoce\"; maybe \"Invoice\"?  [attr-defined]",
					"Found 2 errors in 2 files (checked 214 source files)",
				}
			}},
			"pip": {"pip dependency resolution failure", 1, func(r *rand.Rand) []string {
				return []string{
					"ERROR: Cannot install -r requirements.txt (line 4) and urllib3==2.2.1 because these package versions have conflicting dependencies.",
					"",
					"The conflict is caused by:",
					"    The user requested urllib3==2.2.1",
					"    botocore 1.29.165 depends on urllib3<1.27 and >=1.25.4",
					"",
					"ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/#dealing-with-dependency-conflicts",
				}
			}},
		},
		pass: func(r *rand.Rand) []string {
			return []string{
				"tests/test_errors.py::test_error_page_renders PASSED",
				"tests/test_flaky.py::test_eventually_consistent RERUN",
				"tests/test_flaky.py::test_eventually_consistent PASSED",
				"======================= 389 passed, 1 rerun, 3 warnings in 40.02s =======================",
			}
		},
		filler: pyFiller,
	},
	"ruby": {
		command: "bundle exec rspec", repo: "shop",
		failureOrder: []string{"rspec"},
		failures: map[string]failure{
			"rspec": {"RSpec example failure", 1, func(r *rand.Rand) []string {
				return []string{
					"Failures:",
					"",
					"  1) User#email normalises case",
					"     Failure/Error: expect(user.email).to eq(\"ann@example.com\")",
					"",
					"       expected: \"ann@example.com\"",
					"            got: \"Ann@Example.com\"",
					"",
					"     # ./spec/models/user_spec.rb:23:in `block (3 levels) in <top (required)>'",
					"",
					"Finished in 1 minute 12.4 seconds (files took 4.1 seconds to load)",
					"1204 examples, 1 failure",
					"",
					"Failed examples:",
					"",
					"rspec ./spec/models/user_spec.rb:23 # User#email normalises case",
				}
			}},
		},
		pass: func(r *rand.Rand) []string {
			return []string{
				"Finished in 1 minute 10.2 seconds (files took 4.0 seconds to load)",
				"1204 examples, 0 failures",
			}
		},
		filler: rbFiller,
	},
	"rust": {
		command: "cargo test --workspace", repo: "engine",
		failureOrder: []string{"cargo"},
		failures: map[string]failure{
			"cargo": {"rustc error with code and span", 101, func(r *rand.Rand) []string {
				return []string{
					"\x1b[1m\x1b[31merror[E0308]\x1b[0m\x1b[1m: mismatched types\x1b[0m",
					"  \x1b[1m\x1b[34m--> \x1b[0mcrates/kite-parser/src/lexer.rs:118:24",
					"    \x1b[1m\x1b[34m|\x1b[0m",
					"\x1b[1m\x1b[34m118\x1b[0m \x1b[1m\x1b[34m|\x1b[0m         return Some(offset);",
					"    \x1b[1m\x1b[34m|\x1b[0m                        \x1b[1m\x1b[31m^^^^^^\x1b[0m \x1b[1m\x1b[31mexpected `usize`, found `u32`\x1b[0m",
					"",
					"\x1b[1mFor more information about this error, try `rustc --explain E0308`.\x1b[0m",
					"\x1b[1m\x1b[31merror\x1b[0m: could not compile `kite-parser` (lib) due to 1 previous error",
				}
			}},
		},
		pass: func(r *rand.Rand) []string {
			return []string{"test result: ok. 412 passed; 0 failed; 3 ignored; 0 measured; 0 filtered out; finished in 3.21s"}
		},
		filler: rsFiller,
	},
	"jvm": {
		command: "./gradlew test", repo: "billing",
		failureOrder: []string{"gradle", "maven"},
		failures: map[string]failure{
			"gradle": {"Gradle test task failure", 1, func(r *rand.Rand) []string {
				return []string{
					"InvoiceServiceTest > roundsTotalsHalfUp() FAILED",
					"    org.opentest4j.AssertionFailedError: expected: <30.00> but was: <29.99>",
					"        at com.acme.billing.InvoiceServiceTest.roundsTotalsHalfUp(InvoiceServiceTest.java:57)",
					"",
					"212 tests completed, 1 failed",
					"",
					"> Task :billing:test FAILED",
					"",
					"FAILURE: Build failed with an exception.",
					"",
					"* What went wrong:",
					"Execution failed for task ':billing:test'.",
					"> There were failing tests. See the report at: file:///workdir/billing/build/reports/tests/test/index.html",
					"",
					"BUILD FAILED in 2m 14s",
				}
			}},
			"maven": {"Maven Surefire test failure", 1, func(r *rand.Rand) []string {
				return []string{
					"[ERROR] Tests run: 14, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 1.82 s <<< FAILURE! - in com.acme.orders.OrderRepositoryTest",
					"[ERROR] com.acme.orders.OrderRepositoryTest.findsByCustomer  Time elapsed: 0.41 s  <<< FAILURE!",
					"java.lang.AssertionError: expected:<3> but was:<2>",
					"\tat com.acme.orders.OrderRepositoryTest.findsByCustomer(OrderRepositoryTest.java:88)",
					"[INFO] Results:",
					"[ERROR] Failures: ",
					"[ERROR]   OrderRepositoryTest.findsByCustomer:88 expected:<3> but was:<2>",
					"[ERROR] Tests run: 311, Failures: 1, Errors: 0, Skipped: 2",
					"[INFO] BUILD FAILURE",
					"[ERROR] Failed to execute goal org.apache.maven.plugins:maven-surefire-plugin:3.2.5:test (default-test) on project orders: There are test failures.",
				}
			}},
		},
		pass: func(r *rand.Rand) []string {
			return []string{"[INFO] Tests run: 311, Failures: 0, Errors: 0, Skipped: 2", "[INFO] BUILD SUCCESS"}
		},
		filler: jvmFiller,
	},
	"docker": {
		command: "docker build -t acme/api:ci .", repo: "api",
		failureOrder: []string{"build"},
		failures: map[string]failure{
			"build": {"docker build step failed", 1, func(r *rand.Rand) []string {
				return []string{
					"#12 [builder 5/7] RUN npm ci --omit=dev",
					"#12 4.210 npm ERR! code ERESOLVE",
					"#12 4.211 npm ERR! ERESOLVE unable to resolve dependency tree",
					"#12 4.213 npm ERR! Found: react@18.3.1",
					"#12 ERROR: process \"/bin/sh -c npm ci --omit=dev\" did not complete successfully: exit code: 1",
					"------",
					" > [builder 5/7] RUN npm ci --omit=dev:",
					"------",
					"Dockerfile:14",
					"ERROR: failed to solve: process \"/bin/sh -c npm ci --omit=dev\" did not complete successfully: exit code: 1",
				}
			}},
		},
		pass: func(r *rand.Rand) []string {
			return []string{"#15 exporting to image", "#15 naming to docker.io/acme/api:ci done", "#15 DONE 2.1s"}
		},
		filler: dockerFiller,
	},
	"infra": {
		command: "make integration", repo: "api",
		failureOrder: []string{"oom", "agent-lost", "network"},
		failures: map[string]failure{
			"oom": {"process killed by the OOM killer (exit 137)", 137, func(r *rand.Rand) []string {
				return []string{
					"Running integration suite with 8 workers",
					"Killed",
					"make: *** [Makefile:41: integration] Error 137",
				}
			}},
			"agent-lost": {"agent lost mid-job; the log just stops", -1, func(r *rand.Rand) []string {
				return []string{"Running integration suite with 8 workers", "Waiting for postgres to accept connections..."}
			}},
			"network": {"network timeout fetching dependencies", 1, func(r *rand.Rand) []string {
				return []string{
					"fatal: unable to access 'https://github.com/acme/vendor-sdk.git/': Failed to connect to github.com port 443 after 130452 ms: Connection timed out",
					"curl: (28) Operation timed out after 30001 milliseconds with 0 out of 0 bytes received",
					"make: *** [Makefile:12: deps] Error 1",
				}
			}},
		},
		pass: func(r *rand.Rand) []string {
			return []string{"Integration suite passed: 88 scenarios, 0 errors", "make: Leaving directory '/workdir'"}
		},
		filler: goFiller,
	},
}
