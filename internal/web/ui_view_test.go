package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk"
)

func TestScopeRows(t *testing.T) {
	all := bk.RequiredScopeNames()
	tests := []struct {
		name  string
		facts *bk.TokenFacts
		want  map[string]int // state → count
	}{
		{"nothing connected", nil, map[string]int{"": 9}},
		{"scopes unreadable", &bk.TokenFacts{Masked: "bkua_…abcd"}, map[string]int{"": 9}},
		{"all granted", &bk.TokenFacts{Scopes: all}, map[string]int{"ok": 9}},
		{"two missing", &bk.TokenFacts{Scopes: all[:7], MissingScopes: all[7:]}, map[string]int{"ok": 7, "missing": 2}},
		{"listed missing although present", &bk.TokenFacts{Scopes: all, MissingScopes: all[:1]}, map[string]int{"ok": 8, "missing": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]int{}
			for _, r := range scopeRows(tt.facts) {
				got[r.State]++
				if r.Purpose == "" {
					t.Errorf("scope %s has no purpose", r.Name)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("states %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("states %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestExpiryOf(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *bk.TokenFacts { e := now.Add(d); return &bk.TokenFacts{ExpiresAt: &e} }
	tests := []struct {
		name  string
		facts *bk.TokenFacts
		want  expiry
	}{
		{"no token", nil, expiry{}},
		{"no expiry", &bk.TokenFacts{}, expiry{}},
		{"in 90 days", at(90*24*time.Hour - time.Second), expiry{Known: true, In: "in 89 days"}},
		{"in 5 days", at(5 * 24 * time.Hour), expiry{Known: true, In: "in 5 days", Soon: true}},
		{"expired", at(-30 * time.Hour), expiry{Known: true, In: "30 hours ago", Expired: true, Soon: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := expiryOf(tt.facts, now)
			got.At = time.Time{}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSentence(t *testing.T) {
	tests := map[string]string{
		"":                                    "",
		"token is required":                   "Token is required.",
		"already done.":                       "Already done.",
		"ann@example.com is already a member": "ann@example.com is already a member.",
		"kitewatch could not read":            "Kitewatch could not read.",
	}
	for in, want := range tests {
		if got := sentence(in); got != want {
			t.Errorf("sentence(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTakeFlash(t *testing.T) {
	s := &Server{}
	tests := []struct {
		name      string
		cookie    string
		kind, msg string
	}{
		{"none", "", "", ""},
		{"ok", url.QueryEscape("ok|Saved."), "ok", "Saved."},
		{"error", url.QueryEscape("error|It broke | badly"), "error", "It broke | badly"},
		{"unknown kind", url.QueryEscape("html|<b>x</b>"), "", ""},
		{"no separator", "hello", "", ""},
		{"bad escape", "%zz", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: flashCookie, Value: tt.cookie})
			}
			w := httptest.NewRecorder()
			kind, msg := s.takeFlash(w, r)
			if kind != tt.kind || msg != tt.msg {
				t.Fatalf("got %q %q, want %q %q", kind, msg, tt.kind, tt.msg)
			}
			if tt.cookie != "" && len(w.Result().Cookies()) != 1 {
				t.Fatal("flash cookie not cleared")
			}
		})
	}
	// What redirectFlash writes, takeFlash reads back.
	w := httptest.NewRecorder()
	s.redirectFlash(w, httptest.NewRequest("POST", "/x", nil), "/y", flashOK, "Rotated: kitewatch now uses the new token.")
	r := httptest.NewRequest("GET", "/y", nil)
	for _, c := range w.Result().Cookies() {
		r.AddCookie(c)
	}
	if kind, msg := s.takeFlash(httptest.NewRecorder(), r); kind != flashOK || msg != "Rotated: kitewatch now uses the new token." {
		t.Fatalf("round trip: %q %q", kind, msg)
	}
	if loc := w.Header().Get("Location"); loc != "/y" || w.Code != http.StatusSeeOther {
		t.Fatalf("redirect: %d %s", w.Code, loc)
	}
}
