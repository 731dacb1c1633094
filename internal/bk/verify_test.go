package bk

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/secrets"
)

var testNow = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

func TestVerifyProblems(t *testing.T) {
	past := testNow.Add(-time.Hour)
	tests := []struct {
		name      string
		token     string
		opts      VerifyOptions
		wantCodes []string
		wantOK    bool
		wantCalls int // requests that reached the server
		check     func(t *testing.T, rep Report)
	}{
		{name: "good token, single org", token: tokGood, wantOK: true, wantCalls: 4,
			check: func(t *testing.T, rep Report) {
				if rep.Organization.Slug != "acme" || rep.Organization.Name != "Acme Inc" || rep.Organization.ID != "id-acme" {
					t.Errorf("Organization = %+v", rep.Organization)
				}
				tf := rep.Token
				if tf.UUID == "" || tf.Masked != "bkua_…a1b2" || tf.OwnerName != "CI Service" || tf.OwnerEmail != "ci@example.com" {
					t.Errorf("Token = %+v", tf)
				}
				if len(tf.Scopes) != 9 || len(tf.MissingScopes) != 0 || len(tf.ExtraScopes) != 0 || tf.ExpiresAt != nil || tf.CreatedAt == nil {
					t.Errorf("Token scopes/times = %+v", tf)
				}
			}},
		{name: "good token, chosen org", token: tokGood, opts: VerifyOptions{Organization: "acme"}, wantOK: true, wantCalls: 4},
		{name: "empty", token: "", wantCodes: []string{CodeTokenFormatInvalid}},
		{name: "spaces", token: "bkua_abc def0000000000000000000000000000", wantCodes: []string{CodeTokenFormatInvalid}},
		{name: "newline inside", token: "bkua_abc\ndef0000000000000000000000000000", wantCodes: []string{CodeTokenFormatInvalid}},
		{name: "control char", token: "bkua_abc\x00def000000000000000000000000000", wantCodes: []string{CodeTokenFormatInvalid}},
		{name: "zero width space", token: "bkua_abc\u200bdef00000000000000000000000000", wantCodes: []string{CodeTokenFormatInvalid}},
		{name: "absurd length", token: "bkua_" + strings.Repeat("a", 10000), wantCodes: []string{CodeTokenFormatInvalid}},
		{name: "agent cluster token", token: "bkct_0000000000000000000000000000000000", wantCodes: []string{CodeWrongTokenType},
			check: func(t *testing.T, rep Report) {
				p, _ := rep.Problem(CodeWrongTokenType)
				if !strings.Contains(p.Message, "agent cluster registration token") || !strings.Contains(p.Message, "bkua_") {
					t.Errorf("message %q does not name the kind and bkua_", p.Message)
				}
			}},
		{name: "agent registration token", token: "bkar_0000000000000000000000000000000000", wantCodes: []string{CodeWrongTokenType}},
		{name: "agent session token", token: "bkaa_0000000000000000000000000000000000", wantCodes: []string{CodeWrongTokenType}},
		{name: "agent job token", token: "bkaj_0000000000000000000000000000000000", wantCodes: []string{CodeWrongTokenType}},
		{name: "registry token", token: "bkpt_0000000000000000000000000000000000", wantCodes: []string{CodeWrongTokenType}},
		{name: "portal token", token: "bkpat_000000000000000000000000000000000", wantCodes: []string{CodeWrongTokenType}},
		{name: "portal secret", token: "bkps_0000000000000000000000000000000000", wantCodes: []string{CodeWrongTokenType}},
		{name: "token exchange", token: "bktx_0000000000000000000000000000000000", wantCodes: []string{CodeWrongTokenType}},
		{name: "unknown token", token: tokUnknown, wantCodes: []string{CodeTokenInvalid}, wantCalls: 3},
		{name: "revoked token", token: tokUnknown, opts: VerifyOptions{PreviouslyVerified: true}, wantCodes: []string{CodeTokenRevoked}, wantCalls: 3},
		{name: "401 after known expiry", token: tokUnknown, opts: VerifyOptions{PreviouslyVerified: true, ExpiresAt: &past}, wantCodes: []string{CodeTokenExpired}, wantCalls: 3},
		{name: "expired by expires_at", token: tokExpired, wantCodes: []string{CodeTokenExpired}, wantCalls: 4},
		{name: "expiring soon", token: tokExpiring, wantCodes: []string{CodeTokenExpiringSoon}, wantOK: true, wantCalls: 4,
			check: func(t *testing.T, rep Report) {
				p, _ := rep.Problem(CodeTokenExpiringSoon)
				if p.Severity != SeverityWarning || !strings.Contains(p.Message, "3 days") {
					t.Errorf("problem = %+v", p)
				}
			}},
		{name: "missing scopes", token: tokFewScopes, wantCodes: []string{CodeMissingScopes}, wantCalls: 4,
			check: func(t *testing.T, rep Report) {
				p, _ := rep.Problem(CodeMissingScopes)
				want := []string{"read_teams", "read_artifacts", "read_job_env", "read_build_logs", "read_suites"}
				if got, _ := p.Data["missing_scopes"].([]string); !slices.Equal(got, want) {
					t.Errorf("missing_scopes = %v, want %v", p.Data["missing_scopes"], want)
				}
				if !slices.Equal(rep.Token.MissingScopes, want) {
					t.Errorf("Token.MissingScopes = %v", rep.Token.MissingScopes)
				}
			}},
		{name: "write scopes", token: tokWrite, wantCodes: []string{CodeExcessScopes}, wantOK: true, wantCalls: 4,
			check: func(t *testing.T, rep Report) {
				p, _ := rep.Problem(CodeExcessScopes)
				if got, _ := p.Data["excess_scopes"].([]string); !slices.Equal(got, []string{"write_builds", "graphql"}) {
					t.Errorf("excess_scopes = %v", p.Data["excess_scopes"])
				}
				if !slices.Equal(rep.Token.ExtraScopes, []string{"write_builds", "graphql", "read_agents"}) {
					t.Errorf("ExtraScopes = %v", rep.Token.ExtraScopes)
				}
			}},
		{name: "several orgs, none chosen", token: tokMultiOrg, wantCodes: []string{CodeOrganizationRequired}, wantCalls: 3,
			check: func(t *testing.T, rep Report) {
				p, _ := rep.Problem(CodeOrganizationRequired)
				if got, _ := p.Data["organizations"].([]string); !slices.Equal(got, []string{"acme", "globex"}) {
					t.Errorf("organizations = %v", p.Data["organizations"])
				}
			}},
		{name: "several orgs, one chosen", token: tokMultiOrg, opts: VerifyOptions{Organization: "globex"}, wantOK: true, wantCalls: 4},
		{name: "chosen org not reachable", token: tokGood, opts: VerifyOptions{Organization: "initech"}, wantCodes: []string{CodeNoOrganizationAccess}, wantCalls: 4},
		{name: "chosen org wrong case", token: tokGood, opts: VerifyOptions{Organization: "ACME"}, wantCodes: []string{CodeNoOrganizationAccess}, wantCalls: 4,
			check: func(t *testing.T, rep Report) {
				p, _ := rep.Problem(CodeNoOrganizationAccess)
				if !strings.Contains(p.Message, `did you mean "acme"`) {
					t.Errorf("message %q lacks the case hint", p.Message)
				}
			}},
		{name: "no org at all", token: tokNoOrg, wantCodes: []string{CodeNoOrganizationAccess}, wantCalls: 3},
		{name: "ip restricted", token: tokIP, wantCodes: []string{CodeIPNotAllowed}, wantCalls: 3},
		{name: "server error", token: tokServerError, wantCodes: []string{CodeBuildkiteUnreachable}, wantCalls: 3,
			check: func(t *testing.T, rep Report) {
				p, _ := rep.Problem(CodeBuildkiteUnreachable)
				if p.Data["reason"] != ReasonServerError || !strings.Contains(p.Message, "502") {
					t.Errorf("problem = %+v", p)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake, srv := newFake(t, fakeTokens(testNow))
			tc.opts.Now = func() time.Time { return testNow }
			rep := Verify(context.Background(), srv.URL, secrets.NewSecret(tc.token), tc.opts)
			if got := rep.Codes(); !slices.Equal(got, tc.wantCodes) && !(len(got) == 0 && len(tc.wantCodes) == 0) {
				t.Fatalf("codes = %v, want %v; problems %+v", got, tc.wantCodes, rep.Problems)
			}
			if rep.OK() != tc.wantOK {
				t.Errorf("OK() = %v, want %v", rep.OK(), tc.wantOK)
			}
			if n := fake.count(); n != tc.wantCalls || n > MaxVerifyCalls {
				t.Errorf("server saw %d requests, want %d (max %d): %v", n, tc.wantCalls, MaxVerifyCalls, fake.requests)
			}
			if rep.APICalls != fake.count() {
				t.Errorf("APICalls = %d, server saw %d", rep.APICalls, fake.count())
			}
			for _, p := range rep.Problems {
				if p.Message == "" || p.Remedy == "" || (p.Severity != SeverityError && p.Severity != SeverityWarning) {
					t.Errorf("incomplete problem %+v", p)
				}
			}
			assertNoToken(t, tc.token, rep)
			if tc.check != nil {
				tc.check(t, rep)
			}
		})
	}
}

// assertNoToken fails if the token appears anywhere in the report.
func assertNoToken(t *testing.T, token string, rep Report) {
	t.Helper()
	if len(token) < 8 {
		return
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	secretPart := token[5:]
	if strings.Contains(string(js), secretPart) {
		t.Errorf("report contains the token: %s", js)
	}
}

func TestVerifyUnreachable(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(tlsSrv.Close)

	hangFake, hangSrv := newFake(t, fakeTokens(testNow))
	hangFake.hang = make(chan struct{})
	t.Cleanup(func() { close(hangFake.hang) })

	dnsClient := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, &net.DNSError{Err: "no such host", Name: "api.buildkite.invalid", IsNotFound: true}
	}}}

	rlFake, rlSrv := newFake(t, fakeTokens(testNow))
	rlFake.rateLimited = true

	tests := []struct {
		name, url  string
		opts       VerifyOptions
		wantCode   string
		wantReason string
		wantText   string
	}{
		{"connection refused", closedURL, VerifyOptions{}, CodeBuildkiteUnreachable, ReasonConnect, "refused"},
		{"tls", tlsSrv.URL, VerifyOptions{}, CodeBuildkiteUnreachable, ReasonTLS, "TLS"},
		{"timeout", hangSrv.URL, VerifyOptions{Timeout: 200 * time.Millisecond}, CodeBuildkiteUnreachable, ReasonTimeout, "timed out"},
		{"dns", "http://api.buildkite.invalid", VerifyOptions{HTTPClient: dnsClient}, CodeBuildkiteUnreachable, ReasonDNS, "DNS"},
		{"rate limited", rlSrv.URL, VerifyOptions{}, CodeRateLimited, "", "resets at"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Now = func() time.Time { return testNow }
			rep := Verify(context.Background(), tc.url, secrets.NewSecret(tokGood), tc.opts)
			if !slices.Equal(rep.Codes(), []string{tc.wantCode}) {
				t.Fatalf("codes = %v, want [%s]; %+v", rep.Codes(), tc.wantCode, rep.Problems)
			}
			p := rep.Problems[0]
			if tc.wantReason != "" && p.Data["reason"] != tc.wantReason {
				t.Errorf("reason = %v, want %s", p.Data["reason"], tc.wantReason)
			}
			if !strings.Contains(p.Message, tc.wantText) {
				t.Errorf("message %q does not contain %q", p.Message, tc.wantText)
			}
			if tc.wantCode == CodeRateLimited {
				reset, _ := p.Data["reset_at"].(time.Time)
				if reset.IsZero() || p.Data["scope"] != "rest_user" {
					t.Errorf("rate-limit data = %v", p.Data)
				}
			}
			assertNoToken(t, tokGood, rep)
		})
	}
}

func TestVerifyCallsRunInParallel(t *testing.T) {
	fake, srv := newFake(t, fakeTokens(testNow))
	// Each request waits until three requests are in flight at once. If the
	// calls ran one after another, they would wait out the gate's limit and
	// the test would fail on the recorded flag.
	var mu sync.Mutex
	inFlight, maxInFlight := 0, 0
	allThree := make(chan struct{})
	var once sync.Once
	fake.gate = func(r *http.Request) {
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		if inFlight >= 3 {
			once.Do(func() { close(allThree) })
		}
		mu.Unlock()
		select {
		case <-allThree:
		case <-time.After(5 * time.Second):
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
	}
	rep := Verify(context.Background(), srv.URL, secrets.NewSecret(tokGood), VerifyOptions{Now: func() time.Time { return testNow }})
	if !rep.OK() {
		t.Fatalf("problems: %+v", rep.Problems)
	}
	mu.Lock()
	defer mu.Unlock()
	if maxInFlight < 3 {
		t.Fatalf("at most %d requests were in flight at once, want 3", maxInFlight)
	}
}

func TestVerifyHonoursCallerCancellation(t *testing.T) {
	fake, srv := newFake(t, fakeTokens(testNow))
	fake.hang = make(chan struct{})
	t.Cleanup(func() { close(fake.hang) })
	ctx, cancel := context.WithCancel(context.Background())
	fake.gate = func(*http.Request) { cancel() }
	rep := Verify(ctx, srv.URL, secrets.NewSecret(tokGood), VerifyOptions{Timeout: time.Minute})
	if !slices.Equal(rep.Codes(), []string{CodeBuildkiteUnreachable}) || !strings.Contains(rep.Problems[0].Message, "cancelled") {
		t.Fatalf("problems = %+v", rep.Problems)
	}
}

func TestVerifySendsTokenOnlyInAuthorizationHeader(t *testing.T) {
	fake, srv := newFake(t, fakeTokens(testNow))
	var urls []string
	fake.gate = func(r *http.Request) {
		fake.mu.Lock()
		urls = append(urls, r.URL.String())
		fake.mu.Unlock()
	}
	Verify(context.Background(), srv.URL, secrets.NewSecret(tokGood), VerifyOptions{Organization: "acme"})
	fake.mu.Lock()
	defer fake.mu.Unlock()
	for _, a := range fake.auth {
		if a != "Bearer "+tokGood {
			t.Errorf("Authorization = %q", a)
		}
	}
	for _, u := range urls {
		if strings.Contains(u, tokGood[5:]) {
			t.Errorf("URL %q contains the token", u)
		}
	}
}

func TestRequiredScopes(t *testing.T) {
	want := []string{"read_teams", "read_artifacts", "read_builds", "read_job_env", "read_build_logs", "read_organizations", "read_pipelines", "read_user", "read_suites"}
	if got := RequiredScopeNames(); !slices.Equal(got, want) {
		t.Fatalf("RequiredScopeNames = %v", got)
	}
	for _, s := range RequiredScopes {
		if s.Purpose == "" {
			t.Errorf("scope %s has no purpose", s.Name)
		}
	}
}

func TestProblemJSONIsSnakeCase(t *testing.T) {
	js, _ := json.Marshal(Problem{Code: "c", Severity: "error", Message: "m", Remedy: "r", Data: map[string]any{"missing_scopes": []string{"x"}}})
	if string(js) != `{"code":"c","severity":"error","message":"m","remedy":"r","data":{"missing_scopes":["x"]}}` {
		t.Fatalf("json = %s", js)
	}
	var rep Report
	js, _ = json.Marshal(rep)
	for _, key := range []string{`"checked_at"`, `"missing_scopes"`, `"expires_at"`, `"organizations"`} {
		if !strings.Contains(string(js), key) {
			t.Errorf("report JSON %s lacks %s", js, key)
		}
	}
	_ = errors.New
}
