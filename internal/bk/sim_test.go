package bk_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk"
	"github.com/kitewatch/kitewatch/internal/bk/bksim"
	"github.com/kitewatch/kitewatch/internal/secrets"
)

// simClock is a settable clock shared by the simulator and Verify.
type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *simClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *simClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type simEnv struct {
	sim   *bksim.Server
	url   string
	sc    *bksim.Scenario
	clock *simClock
}

func newSim(t *testing.T) simEnv {
	t.Helper()
	clock := &simClock{t: time.Now().UTC().Truncate(time.Second)}
	sc := bksim.Demo()
	sim := bksim.New(sc, bksim.WithClock(clock.Now))
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	return simEnv{sim: sim, url: srv.URL, sc: sc, clock: clock}
}

func (e simEnv) verify(t *testing.T, tokenName string, opts bk.VerifyOptions) bk.Report {
	t.Helper()
	tok := e.sc.Token(tokenName)
	if tok == "" {
		t.Fatalf("demo scenario has no token %q", tokenName)
	}
	opts.Now = e.clock.Now
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	rep := bk.Verify(context.Background(), e.url, secrets.NewSecret(tok), opts)
	js, _ := json.Marshal(rep)
	if strings.Contains(string(js), tok[5:]) {
		t.Errorf("report contains the token: %s", js)
	}
	for _, p := range rep.Problems {
		if strings.Contains(p.Message, tok[5:]) || strings.Contains(p.Remedy, tok[5:]) {
			t.Errorf("problem contains the token: %+v", p)
		}
	}
	return rep
}

func TestVerifyAgainstSimulator(t *testing.T) {
	tests := []struct {
		token     string
		opts      bk.VerifyOptions
		wantCodes []string
		wantOK    bool
	}{
		{"good", bk.VerifyOptions{}, nil, true},
		{"good", bk.VerifyOptions{Organization: "acme"}, nil, true},
		{"missing-scopes", bk.VerifyOptions{}, []string{bk.CodeMissingScopes}, false},
		{"expired", bk.VerifyOptions{}, []string{bk.CodeTokenInvalid}, false},
		{"write-scopes", bk.VerifyOptions{}, []string{bk.CodeExcessScopes}, true},
		{"expiring-soon", bk.VerifyOptions{}, []string{bk.CodeTokenExpiringSoon}, true},
		{"multi-org", bk.VerifyOptions{}, []string{bk.CodeOrganizationRequired}, false},
		{"multi-org", bk.VerifyOptions{Organization: "acme-labs"}, nil, true},
		{"no-org-access", bk.VerifyOptions{}, []string{bk.CodeNoOrganizationAccess}, false},
		{"no-org-access", bk.VerifyOptions{Organization: "acme"}, []string{bk.CodeNoOrganizationAccess}, false},
		{"good", bk.VerifyOptions{Organization: "acme-labs"}, []string{bk.CodeNoOrganizationAccess}, false},
		{"ip-restricted", bk.VerifyOptions{}, []string{bk.CodeIPNotAllowed}, false},
		{"agent-cluster", bk.VerifyOptions{}, []string{bk.CodeWrongTokenType}, false},
		{"agent-job", bk.VerifyOptions{}, []string{bk.CodeWrongTokenType}, false},
		{"revoked", bk.VerifyOptions{}, []string{bk.CodeTokenInvalid}, false},
		{"revoked", bk.VerifyOptions{PreviouslyVerified: true}, []string{bk.CodeTokenRevoked}, false},
	}
	for _, tc := range tests {
		t.Run(tc.token+"/"+tc.opts.Organization, func(t *testing.T) {
			env := newSim(t)
			rep := env.verify(t, tc.token, tc.opts)
			if got := rep.Codes(); !slices.Equal(got, tc.wantCodes) && len(got)+len(tc.wantCodes) > 0 {
				t.Fatalf("codes = %v, want %v: %+v", got, tc.wantCodes, rep.Problems)
			}
			if rep.OK() != tc.wantOK {
				t.Errorf("OK = %v, want %v", rep.OK(), tc.wantOK)
			}
			reqs := env.sim.Requests()
			if len(reqs) > bk.MaxVerifyCalls || len(reqs) != rep.APICalls {
				t.Errorf("simulator saw %d requests (report says %d, max %d): %+v", len(reqs), rep.APICalls, bk.MaxVerifyCalls, reqs)
			}
			if rep.OK() && (rep.Organization.Slug == "" || rep.Organization.Name == "" || rep.Token.UUID == "") {
				t.Errorf("OK report lacks facts: %+v", rep)
			}
		})
	}
}

func TestVerifyWrongKindSendsNothing(t *testing.T) {
	env := newSim(t)
	env.verify(t, "agent-cluster", bk.VerifyOptions{})
	if n := len(env.sim.Requests()); n != 0 {
		t.Fatalf("simulator saw %d requests for a wrong-kind token", n)
	}
}

func TestVerifyRecheckAgainstSimulator(t *testing.T) {
	t.Run("revoked", func(t *testing.T) {
		env := newSim(t)
		if rep := env.verify(t, "good", bk.VerifyOptions{}); !rep.OK() {
			t.Fatalf("first check: %+v", rep.Problems)
		}
		if err := env.sim.RevokeToken("good"); err != nil {
			t.Fatal(err)
		}
		rep := env.verify(t, "good", bk.VerifyOptions{PreviouslyVerified: true})
		if !slices.Equal(rep.Codes(), []string{bk.CodeTokenRevoked}) {
			t.Fatalf("codes = %v", rep.Codes())
		}
	})
	t.Run("expired", func(t *testing.T) {
		env := newSim(t)
		first := env.verify(t, "expiring-soon", bk.VerifyOptions{})
		if first.Token.ExpiresAt == nil {
			t.Fatal("no expiry reported")
		}
		env.clock.Add(6 * 24 * time.Hour)
		rep := env.verify(t, "expiring-soon", bk.VerifyOptions{PreviouslyVerified: true, ExpiresAt: first.Token.ExpiresAt})
		if !slices.Equal(rep.Codes(), []string{bk.CodeTokenExpired}) {
			t.Fatalf("codes = %v: %+v", rep.Codes(), rep.Problems)
		}
	})
	t.Run("scope loss", func(t *testing.T) {
		env := newSim(t)
		if err := env.sim.SetTokenScopes("good", []string{"read_builds", "read_organizations", "read_pipelines"}); err != nil {
			t.Fatal(err)
		}
		rep := env.verify(t, "good", bk.VerifyOptions{PreviouslyVerified: true})
		if !slices.Equal(rep.Codes(), []string{bk.CodeMissingScopes}) {
			t.Fatalf("codes = %v", rep.Codes())
		}
	})
	t.Run("organization access lost", func(t *testing.T) {
		env := newSim(t)
		if err := env.sim.RevokeOrg("good", "acme"); err != nil {
			t.Fatal(err)
		}
		rep := env.verify(t, "good", bk.VerifyOptions{PreviouslyVerified: true, Organization: "acme"})
		if !slices.Equal(rep.Codes(), []string{bk.CodeNoOrganizationAccess}) {
			t.Fatalf("codes = %v", rep.Codes())
		}
	})
}

func TestVerifyFaultsAgainstSimulator(t *testing.T) {
	tests := []struct {
		fault      bksim.Fault
		wantCode   string
		wantReason string
		wantText   string
	}{
		{bksim.Fault{Kind: bksim.FaultHang}, bk.CodeBuildkiteUnreachable, bk.ReasonTimeout, "timed out"},
		{bksim.Fault{Kind: bksim.FaultStatus, Status: 503}, bk.CodeBuildkiteUnreachable, bk.ReasonServerError, "503"},
		{bksim.Fault{Kind: bksim.FaultReset}, bk.CodeBuildkiteUnreachable, bk.ReasonConnect, "connection"},
		{bksim.Fault{Kind: bksim.FaultRateLimit}, bk.CodeRateLimited, "", "resets at"},
	}
	for _, tc := range tests {
		t.Run(tc.fault.Kind, func(t *testing.T) {
			env := newSim(t)
			if _, err := env.sim.AddFault(tc.fault); err != nil {
				t.Fatal(err)
			}
			rep := env.verify(t, "good", bk.VerifyOptions{Timeout: 300 * time.Millisecond})
			if !slices.Equal(rep.Codes(), []string{tc.wantCode}) {
				t.Fatalf("codes = %v: %+v", rep.Codes(), rep.Problems)
			}
			p := rep.Problems[0]
			if tc.wantReason != "" && p.Data["reason"] != tc.wantReason {
				t.Errorf("reason = %v, want %s", p.Data["reason"], tc.wantReason)
			}
			if !strings.Contains(p.Message, tc.wantText) {
				t.Errorf("message %q lacks %q", p.Message, tc.wantText)
			}
		})
	}
}
