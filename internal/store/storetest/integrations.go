package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/store"
)

func testIntegrations(t *testing.T, db *store.DB, c *clock) {
	ctx := context.Background()
	o := must(db.CreateOrg(ctx, "acme", "Acme"))
	p := must(db.CreateOrg(ctx, "other", "Other"))
	if _, err := db.Integration(ctx, o.ID, "buildkite"); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("missing integration: %v", err)
	}
	now := c.Now()
	in := must(db.SaveIntegration(ctx, ci.Integration{OrgID: o.ID, Kind: "buildkite", Status: ci.StatusConnected,
		ExtOrgSlug: "acme-bk", ExtOrgName: "Acme BK", TokenSealed: []byte{0, 1, 2, 0xff}, TokenKEKID: "k1", Generation: 1,
		Facts: json.RawMessage(`{"masked":"bkua_…abcd"}`), Problems: json.RawMessage(`[]`), LastCheckedAt: &now,
		LastCheckOK: true, EverVerified: true, ConnectedAt: &now}))
	got := must(db.Integration(ctx, o.ID, "buildkite"))
	if got.ID != in.ID || !bytes.Equal(got.TokenSealed, []byte{0, 1, 2, 0xff}) || got.Status != ci.StatusConnected ||
		!got.LastCheckOK || !got.EverVerified || string(got.Facts) != `{"masked":"bkua_…abcd"}` || got.ConnectedBy != nil {
		t.Fatalf("Integration = %+v", got)
	}
	if _, err := db.Integration(ctx, p.ID, "buildkite"); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("integration visible from another org: %v", err)
	}
	// Upsert keeps one row per organization and kind.
	got.Generation, got.TokenSealed = 2, []byte{9}
	again := must(db.SaveIntegration(ctx, got))
	if again.ID != in.ID {
		t.Fatalf("upsert created a second row: %d vs %d", again.ID, in.ID)
	}
	// A check recorded for an older generation does not apply.
	stale := got
	stale.Generation, stale.Status = 1, ci.StatusNeedsAttention
	if ok := must(db.RecordCheck(ctx, stale, ci.IntegrationCheck{Trigger: "recheck", CheckedAt: now})); ok {
		t.Fatal("stale check applied")
	}
	cur := got
	cur.Status, cur.Problems = ci.StatusNeedsAttention, json.RawMessage(`[{"code":"token_revoked"}]`)
	if ok := must(db.RecordCheck(ctx, cur, ci.IntegrationCheck{Trigger: "recheck", Codes: []string{"token_revoked"}, CheckedAt: now})); !ok {
		t.Fatal("current check not applied")
	}
	if g := must(db.Integration(ctx, o.ID, "buildkite")); g.Status != ci.StatusNeedsAttention || g.LastCheckOK {
		t.Fatalf("after check: %+v", g)
	}
	checks := must(db.ListChecks(ctx, in.ID, 10))
	if len(checks) != 1 || checks[0].Codes[0] != "token_revoked" || checks[0].Trigger != "recheck" {
		t.Fatalf("ListChecks = %+v", checks)
	}
	list := must(db.ListIntegrations(ctx, "buildkite"))
	if len(list) != 1 {
		t.Fatalf("ListIntegrations = %+v", list)
	}
	todo := must(db.IntegrationsToRewrap(ctx, "k2", 10))
	if len(todo) != 1 {
		t.Fatalf("IntegrationsToRewrap = %+v", todo)
	}
	if ok := must(db.ReplaceSealedToken(ctx, in.ID, []byte{1}, []byte{7}, "k2")); ok {
		t.Fatal("compare-and-swap replaced a different record")
	}
	if ok := must(db.ReplaceSealedToken(ctx, in.ID, []byte{9}, []byte{7}, "k2")); !ok {
		t.Fatal("compare-and-swap did not replace")
	}
	if todo := must(db.IntegrationsToRewrap(ctx, "k2", 10)); len(todo) != 0 {
		t.Fatalf("still to rewrap: %+v", todo)
	}
	if _, err := db.Setting(ctx, "kcv"); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("missing setting: %v", err)
	}
	if err := db.PutSetting(ctx, "kcv", "a"); err != nil {
		t.Fatal(err)
	}
	if err := db.PutSetting(ctx, "kcv", "b"); err != nil {
		t.Fatal(err)
	}
	if v := must(db.Setting(ctx, "kcv")); v != "b" {
		t.Fatalf("Setting = %q", v)
	}
}
