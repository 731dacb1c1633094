package classify

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/kitewatch/kitewatch/internal/logparse"
)

var (
	bigLogPath = flag.String("big-log", "", "write a generated noisy job log to this path (see TestWriteBigLog)")
	bigLogMB   = flag.Int("big-log-mb", 200, "size of the generated log in MiB")
)

// ordinary is the bulk of a CI log: progress, downloads, compiler and test
// runner chatter, application logs.
var ordinary = []string{
	"go: downloading github.com/aws/aws-sdk-go-v2/service/s3 v1.58.2",
	"   Compiling tokio-util v0.7.11",
	"#14 [build 6/9] COPY --from=deps /app/node_modules ./node_modules",
	"Downloaded from central: https://repo.maven.apache.org/maven2/com/fasterxml/jackson/core/jackson-databind/2.17.1/jackson-databind-2.17.1.jar (1.6 MB at 12 MB/s)",
	"2025-11-27T07:01:12.331Z INFO  request completed status=200 path=/api/v1/orders duration=3.2ms user=4411",
	"tests/test_orders.py::test_create_order_with_coupon PASSED                [ 12%]",
	"=== RUN   TestOrderTotals/with_discount",
	"    --- PASS: TestOrderTotals/with_discount (0.00s)",
	"ok  	github.com/acme/platform/internal/orders	0.214s	coverage: 84.1% of statements",
	"  [32m✓[0m computes totals for mixed carts (4 ms)",
	"[INFO] Building jar: /var/lib/buildkite-agent/builds/agent-1/acme/platform/target/platform-1.4.2.jar",
	"cc -O2 -Wall -Wextra -Iinclude -c src/buffer.c -o build/obj/buffer.o",
	"[1A[2K[0GProgress: 42% (4200/10000)",
	"Progress: 10%\rProgress: 55%\rProgress: 100%",
	"webpack 5.91.0 compiled successfully in 21342 ms",
	"Step 7/12 : RUN make build",
	"    Finished `release` profile [optimized] target(s) in 1m 12s",
	"Successfully installed Django-5.0.6 asgiref-3.8.1 sqlparse-0.5.0",
	"[36m[api][0m listening on :8080 (pid 4123) in [1mproduction[0m mode",
	"make[2]: Entering directory '/var/lib/buildkite-agent/builds/agent-1/acme/platform/src'",
}

// noise is what fools a naive grep: error, FAIL, panic, timeouts, warnings
// and retries in passing output. One line in ten of the generated log is
// one of these.
var noise = []string{
	"=== RUN   TestErrorHandling/returns_wrapped_error",
	"--- PASS: TestErrorHandling/returns_wrapped_error (0.00s)",
	"    handler_test.go:88: got expected error: context canceled",
	"ok  \tgithub.com/acme/platform/internal/errors\t0.214s\tcoverage: 84.1% of statements",
	"\x1b[32m✓\x1b[0m src/components/ErrorBanner.test.tsx (12 tests) 31ms",
	"  \x1b[32m✓\x1b[0m renders the error message when the request fails (4 ms)",
	"npm WARN deprecated inflight@1.0.6: This module is not supported, and leaks memory.",
	"added 1289 packages, and audited 1290 packages in 31s",
	"found 0 vulnerabilities",
	"   Compiling serde_json v1.0.117",
	"#12 [build 4/9] RUN --mount=type=cache,target=/root/.cache go build ./...",
	"#12 CACHED",
	"[INFO] Tests run: 42, Failures: 0, Errors: 0, Skipped: 1, Time elapsed: 3.21 s -- in com.acme.ErrorMapperTest",
	"tests/test_errors.py::test_error_is_logged PASSED                         [ 41%]",
	"2025-11-27T07:01:12.331Z INFO  request completed status=200 path=/api/v1/errors duration=3.2ms",
	"2025-11-27T07:01:12.332Z WARN  slow query took 812ms (threshold 500ms)",
	"level=error msg=\"retrying after transient failure\" attempt=1 err=\"connection reset by peer\"",
	"\x1b[33mwarning\x1b[0m: unused variable: `err`",
	"0 errors, 0 warnings",
	"Downloading https://repo.maven.apache.org/maven2/org/slf4j/slf4j-api/2.0.13/slf4j-api-2.0.13.jar",
	"test tests::error_display_is_stable ... ok",
	"     Running tests/integration_panic_recovery.rs (target/debug/deps/integration-5f1c2b)",
	"Step 7/12 : RUN make build",
	"make[2]: Entering directory '/var/lib/buildkite-agent/builds/agent-1/acme/platform/src'",
	"cc -O2 -Wall -c src/error.c -o build/error.o",
	"\x1b[1A\x1b[2K\x1b[0GProgress: 42% (4200/10000)",
	"Progress: 10%\rProgress: 55%\rProgress: 100%",
	"    recover_test.go:18: recovered from panic: boom (expected)",
	"INFO: 1 flaky test passed on retry: TestFlakyNetworkFAILOVER",
}

// bigLogTails are the endings of generated logs: a failing Go test, a
// compile error followed by more noise, and a passing job.
var bigLogTails = map[string][]string{
	"test": {
		"=== RUN   TestSettle",
		"    settle_test.go:31: balance = 90, want 100",
		"--- FAIL: TestSettle (0.00s)",
		"FAIL",
		"FAIL\tgithub.com/acme/platform/ledger\t0.031s",
		"^^^ +++",
		"\x1b[31m🚨 Error: The command exited with status 1\x1b[0m",
		"^^^ +++",
		"user command error: exit status 1",
	},
	"compile": {
		"# github.com/acme/platform/internal/billing",
		"internal/billing/invoice.go:214:9: undefined: roundCents",
		"@noise",
		"^^^ +++",
		"\x1b[31m🚨 Error: The command exited with status 2\x1b[0m",
		"^^^ +++",
		"user command error: exit status 2",
	},
	"pass": {
		"PASS",
		"ok  \tgithub.com/acme/platform/ledger\t0.031s",
	},
}

// writeBigLog writes about size bytes of noisy Buildkite-format log ending
// in a Go test failure and the agent's failure tail.
func writeBigLog(w io.Writer, size int64) error {
	return writeBigLogWith(w, size, bigLogTails["test"])
}

func writeBigLogWith(w io.Writer, size int64, tail []string) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	ts := int64(1764200000000)
	long := strings.Repeat("x", 20000)
	noiseLines := func(n int64) error {
		var written int64
		for i := 0; written < n; i++ {
			ts += int64(i % 7)
			line := ordinary[i%len(ordinary)]
			if i%10 == 0 {
				line = noise[(i/10)%len(noise)]
			}
			if i%50000 == 0 {
				line = "minified bundle: " + long
			}
			k, err := fmt.Fprintf(bw, "\x1b_bk;t=%d\x07%s\n", ts, line)
			if err != nil {
				return err
			}
			written += int64(k)
		}
		return nil
	}
	if err := noiseLines(size); err != nil {
		return err
	}
	for _, l := range tail {
		if l == "@noise" {
			if err := noiseLines(size / 4); err != nil {
				return err
			}
			continue
		}
		if _, err := fmt.Fprintf(bw, "\x1b_bk;t=%d\x07%s\n", ts, l); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// TestWriteBigLog writes a large generated log for measurements:
//
//	go test ./internal/classify -run TestWriteBigLog -big-log /tmp/big.log -big-log-mb 200
func TestWriteBigLog(t *testing.T) {
	if *bigLogPath == "" {
		t.Skip("set -big-log PATH to write a generated log")
	}
	f, err := os.Create(*bigLogPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := writeBigLog(f, int64(*bigLogMB)<<20); err != nil {
		t.Fatal(err)
	}
}

// TestBigLogs analyses large generated logs: the failure is found among
// megabytes of noise, nothing in the noise is reported, and a passing job
// reports nothing at all.
func TestBigLogs(t *testing.T) {
	tests := []struct {
		tail     string
		failures int
		title    string
		category Category
	}{
		{"test", 1, "TestSettle failed: balance = 90, want 100", Test},
		{"compile", 1, "undefined: roundCents", Compile},
		{"pass", 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.tail, func(t *testing.T) {
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(writeBigLogWith(pw, 8<<20, bigLogTails[tt.tail])) }()
			res, err := Analyze(pr, Options{})
			pr.Close()
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Failures) != tt.failures {
				t.Fatalf("%d failures, want %d: %+v", len(res.Failures), tt.failures, res.Failures)
			}
			if tt.failures > 0 && (res.Failures[0].Title != tt.title || res.Failures[0].Category != tt.category) {
				t.Errorf("first failure [%s] %q, want [%s] %q", res.Failures[0].Category, res.Failures[0].Title, tt.category, tt.title)
			}
		})
	}
}

func BenchmarkAnalyze(b *testing.B) {
	var sb strings.Builder
	if err := writeBigLog(&sb, 16<<20); err != nil {
		b.Fatal(err)
	}
	data := sb.String()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Analyze(strings.NewReader(data), Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

var analyzePath = flag.String("analyze", "", "analyse this log file (see TestAnalyzeFlag)")

// TestAnalyzeFlag analyses the file given by -analyze, for measuring the
// analyser's CPU time and peak memory on large logs with /usr/bin/time.
func TestAnalyzeFlag(t *testing.T) {
	if *analyzePath == "" {
		t.Skip("set -analyze PATH")
	}
	res := analyzeFile(t, *analyzePath, Options{})
	if len(res.Failures) == 0 {
		t.Fatal("no failure found")
	}
	t.Logf("first failure: [%s] %s", res.Failures[0].Category, res.Failures[0].Title)
}

// BenchmarkRegexpEveryLine is the naive baseline: every rule's regexp tried
// on every line, with the same parser. Compare with BenchmarkAnalyze.
func BenchmarkRegexpEveryLine(b *testing.B) {
	var sb strings.Builder
	if err := writeBigLog(&sb, 16<<20); err != nil {
		b.Fatal(err)
	}
	data := sb.String()
	e, err := newEngine(Rules)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		p := logparse.New(strings.NewReader(data), logparse.Options{})
		matches := 0
		for p.Next() {
			for _, r := range e.rules {
				if r.re.Match(p.Line().Text) {
					matches++
					break
				}
			}
		}
		if matches == 0 {
			b.Fatal("no matches")
		}
	}
}
