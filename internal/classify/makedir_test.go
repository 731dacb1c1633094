package classify

import (
	"strings"
	"testing"
)

func TestMonorepoTaskPrefix(t *testing.T) {
	tests := []struct {
		line string
		want string // the line after the prefix
	}{
		{"web:lint: 57:13  Error: x", "57:13  Error: x"},
		{"@acme/ui:build: > tsc", "> tsc"},
		{"api:test:unit: FAIL src/a.test.ts", "FAIL src/a.test.ts"},
		{"web:lint:", ""},
		{"internal/x.go:12:5: undefined: y", "internal/x.go:12:5: undefined: y"},
		{"make: *** [all] Error 2", "make: *** [all] Error 2"},
		{"git@github.com:acme/web.git", "git@github.com:acme/web.git"},
		{"error: could not compile", "error: could not compile"},
		{"ld.lld: error: undefined symbol: x", "ld.lld: error: undefined symbol: x"},
		{"http://localhost:8080/x", "http://localhost:8080/x"},
	}
	for _, tt := range tests {
		got := string(stripLinePrefix([]byte(tt.line)))
		if got != tt.want {
			t.Errorf("stripLinePrefix(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

func TestInMakeDir(t *testing.T) {
	tests := []struct {
		dir, path, want string
	}{
		{"src/net", "tls.c", "src/net/tls.c"},
		{"src/net", "../util/log.c", "src/util/log.c"},
		{"src/net", "src/net/tls.c", "src/net/tls.c"},
		{"src/net", "/usr/include/stdio.h", "/usr/include/stdio.h"},
		{"", "tls.c", "tls.c"},
		{"/opt/other", "../x.c", "../x.c"},
	}
	for _, tt := range tests {
		if got := inMakeDir(tt.dir, tt.path); got != tt.want {
			t.Errorf("inMakeDir(%q, %q) = %q, want %q", tt.dir, tt.path, got, tt.want)
		}
	}
}

func TestMakeDirectoryLocations(t *testing.T) {
	log := "make -C src all\n" +
		"make[1]: Entering directory '/var/lib/buildkite-agent/builds/agent-1/acme/app/src'\n" +
		"make[2]: Entering directory '/var/lib/buildkite-agent/builds/agent-1/acme/app/src/net'\n" +
		"tls.c:142:18: error: implicit declaration of function 'x'\n" +
		"make[2]: Leaving directory '/var/lib/buildkite-agent/builds/agent-1/acme/app/src/net'\n" +
		"util.c:7:1: error: expected ';' before '}' token\n" +
		"make[1]: Leaving directory '/var/lib/buildkite-agent/builds/agent-1/acme/app/src'\n" +
		"main.c:3:1: error: unknown type name 'foo'\n"
	res := analyzeString(t, log, Options{})
	want := map[string]bool{"src/net/tls.c": false, "src/util.c": false, "main.c": false}
	for _, f := range res.Failures {
		for _, l := range f.Locations {
			if _, ok := want[l.Path]; ok {
				want[l.Path] = true
			}
		}
	}
	for p, found := range want {
		if !found {
			t.Errorf("location %s not found in %+v", p, res.Failures)
		}
	}
}

func analyzeString(t *testing.T, log string, opts Options) Result {
	t.Helper()
	res, err := Analyze(strings.NewReader(log), opts)
	if err != nil {
		t.Fatalf("analyze: %v", err)
	}
	return res
}
