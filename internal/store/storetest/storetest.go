// Package storetest is the storage conformance suite: every database driver
// must pass Run with a fresh, migrated database per call of open.
package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/store"
)

// Open returns a fresh, empty database for one subtest; the suite migrates it.
type Open func(t *testing.T, opts store.Options) *store.DB

// clock is a settable clock for expiry tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Run runs the conformance suite.
func Run(t *testing.T, open Open) {
	fresh := func(t *testing.T) (*store.DB, *clock) {
		t.Helper()
		c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)}
		db := open(t, store.Options{Now: c.Now})
		t.Cleanup(func() { db.Close() })
		ctx := context.Background()
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		if pending, err := db.Pending(ctx); err != nil || pending {
			t.Fatalf("Pending after Migrate = %v, %v; want false, nil", pending, err)
		}
		if n, err := db.Migrate(ctx); err != nil || n != 0 {
			t.Fatalf("second Migrate applied %d, %v; want 0, nil", n, err)
		}
		return db, c
	}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, db *store.DB, c *clock)
	}{
		{"Orgs", testOrgs},
		{"UsersAndMembers", testUsersAndMembers},
		{"LastAdmin", testLastAdmin},
		{"Sessions", testSessions},
		{"APITokens", testAPITokens},
		{"SetupLinks", testSetupLinks},
		{"Audit", testAudit},
		{"TxRollback", testTxRollback},
		{"ConcurrentWrites", testConcurrentWrites},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur = t
			db, c := fresh(t)
			tc.fn(t, db, c)
		})
	}
	t.Run("Integrations", func(t *testing.T) { cur = t; db, c := fresh(t); testIntegrations(t, db, c) })
	runBuilds(t, fresh)
	runAnalyses(t, fresh)
	runInvitations(t, fresh)
}

// cur is the running subtest, for must. The suite's subtests run one at a
// time, and must is only called on the test goroutine.
var cur *testing.T

// must fails the current subtest when err is not nil.
func must[T any](v T, err error) T {
	if err != nil {
		cur.Helper()
		cur.Fatal(err)
	}
	return v
}

func testOrgs(t *testing.T, db *store.DB, _ *clock) {
	ctx := context.Background()
	o := must(db.CreateOrg(ctx, "acme", "Acme"))
	if o.ID == 0 || o.Slug != "acme" {
		t.Fatalf("CreateOrg = %+v", o)
	}
	if _, err := db.CreateOrg(ctx, "acme", "Other"); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("duplicate slug: err = %v, want ErrConflict", err)
	}
	got := must(db.OrgBySlug(ctx, "acme"))
	if got != o {
		t.Fatalf("OrgBySlug = %+v, want %+v", got, o)
	}
	if _, err := db.OrgBySlug(ctx, "nope"); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("missing org: err = %v, want ErrNotFound", err)
	}
	byID := must(db.OrgByID(ctx, o.ID))
	if byID != o {
		t.Fatalf("OrgByID = %+v", byID)
	}
	must(db.CreateOrg(ctx, "beta", "Beta"))
	all := must(db.ListOrgs(ctx))
	if len(all) != 2 || all[0].Slug != "acme" || all[1].Slug != "beta" {
		t.Fatalf("ListOrgs = %+v", all)
	}
}

func testUsersAndMembers(t *testing.T, db *store.DB, _ *clock) {
	ctx := context.Background()
	if n := must(db.CountUsers(ctx)); n != 0 {
		t.Fatalf("CountUsers = %d", n)
	}
	o := must(db.CreateOrg(ctx, "acme", "Acme"))
	other := must(db.CreateOrg(ctx, "other", "Other"))
	u := must(db.CreateUser(ctx, " A@Acme.Test ", "Ann", "hash-a"))
	if u.Email != "a@acme.test" {
		t.Fatalf("email not normalised: %q", u.Email)
	}
	if _, err := db.CreateUser(ctx, "a@ACME.test", "Dup", "h"); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("duplicate email: %v", err)
	}
	got := must(db.UserByEmail(ctx, "A@acme.test"))
	if got.ID != u.ID || got.PasswordHash != "hash-a" {
		t.Fatalf("UserByEmail = %+v", got)
	}
	if err := db.SetPasswordHash(ctx, u.ID, "hash-b"); err != nil {
		t.Fatal(err)
	}
	if got := must(db.UserByID(ctx, u.ID)); got.PasswordHash != "hash-b" {
		t.Fatalf("SetPasswordHash not applied")
	}
	b := must(db.CreateUser(ctx, "b@acme.test", "Bob", "h"))
	if err := db.AddMember(ctx, o.ID, u.ID, ci.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if err := db.AddMember(ctx, o.ID, b.ID, ci.RoleMember); err != nil {
		t.Fatal(err)
	}
	if err := db.AddMember(ctx, o.ID, b.ID, ci.RoleAdmin); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("duplicate membership: %v", err)
	}
	m := must(db.Membership(ctx, o.ID, b.ID))
	if m.Role != ci.RoleMember {
		t.Fatalf("Membership = %+v", m)
	}
	if _, err := db.Membership(ctx, other.ID, b.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("membership in other org: %v", err)
	}
	members := must(db.ListMembers(ctx, o.ID))
	if len(members) != 2 || members[0].User.Email != "a@acme.test" || members[0].User.PasswordHash != "" {
		t.Fatalf("ListMembers = %+v", members)
	}
	if _, err := db.SetMemberRole(ctx, o.ID, b.ID, ci.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SetMemberRole(ctx, other.ID, b.ID, ci.RoleAdmin); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("SetMemberRole in other org: %v", err)
	}
	orgs := must(db.ListUserOrgs(ctx, b.ID))
	if len(orgs) != 1 || orgs[0].Org.Slug != "acme" || orgs[0].Role != ci.RoleAdmin {
		t.Fatalf("ListUserOrgs = %+v", orgs)
	}
	if _, err := db.RemoveMember(ctx, o.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RemoveMember(ctx, o.ID, b.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("second RemoveMember: %v", err)
	}
}

func testLastAdmin(t *testing.T, db *store.DB, _ *clock) {
	ctx := context.Background()
	o := must(db.CreateOrg(ctx, "acme", "Acme"))
	a := must(db.CreateUser(ctx, "a@acme.test", "", "h"))
	if err := db.AddMember(ctx, o.ID, a.ID, ci.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SetMemberRole(ctx, o.ID, a.ID, ci.RoleMember); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("demote last admin: %v", err)
	}
	if _, err := db.RemoveMember(ctx, o.ID, a.ID); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("remove last admin: %v", err)
	}
	if m := must(db.Membership(ctx, o.ID, a.ID)); m.Role != ci.RoleAdmin {
		t.Fatalf("refused change still applied: %+v", m)
	}
}

func testSessions(t *testing.T, db *store.DB, c *clock) {
	ctx := context.Background()
	u := must(db.CreateUser(ctx, "a@acme.test", "", "h"))
	now := c.Now()
	s := must(db.CreateSession(ctx, ci.Session{TokenHash: []byte{1, 2, 3}, UserID: u.ID, CSRFToken: "csrf",
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), LastSeen: now}))
	got := must(db.SessionByHash(ctx, []byte{1, 2, 3}))
	if got.ID != s.ID || got.UserID != u.ID || got.CSRFToken != "csrf" || !got.ExpiresAt.Equal(now.Add(time.Hour).Truncate(time.Microsecond)) {
		t.Fatalf("SessionByHash = %+v", got)
	}
	if _, err := db.SessionByHash(ctx, []byte{9}); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
	if err := db.TouchSession(ctx, s.ID, now.Add(time.Minute), now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	c.Add(90 * time.Minute)
	must(db.SessionByHash(ctx, []byte{1, 2, 3})) // slid forward, still valid
	c.Add(time.Hour)
	if _, err := db.SessionByHash(ctx, []byte{1, 2, 3}); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("expired session still valid: %v", err)
	}
	if n := must(db.DeleteExpired(ctx, c.Now())); n != 1 {
		t.Fatalf("DeleteExpired = %d, want 1", n)
	}
	s2 := must(db.CreateSession(ctx, ci.Session{TokenHash: []byte{4}, UserID: u.ID, CreatedAt: c.Now(), ExpiresAt: c.Now().Add(time.Hour), LastSeen: c.Now()}))
	if err := db.DeleteSession(ctx, s2.TokenHash); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SessionByHash(ctx, s2.TokenHash); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("deleted session still valid: %v", err)
	}
	must(db.CreateSession(ctx, ci.Session{TokenHash: []byte{5}, UserID: u.ID, CreatedAt: c.Now(), ExpiresAt: c.Now().Add(time.Hour), LastSeen: c.Now()}))
	if err := db.DeleteUserSessions(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SessionByHash(ctx, []byte{5}); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("DeleteUserSessions left a session: %v", err)
	}
}

func testAPITokens(t *testing.T, db *store.DB, c *clock) {
	ctx := context.Background()
	u := must(db.CreateUser(ctx, "a@acme.test", "", "h"))
	v := must(db.CreateUser(ctx, "v@acme.test", "", "h"))
	tok := must(db.CreateAPIToken(ctx, ci.APIToken{UserID: u.ID, Name: "ci", Hint: "kw_…abcd", TokenHash: []byte("hash1")}))
	if tok.ID == 0 || tok.CreatedAt.IsZero() {
		t.Fatalf("CreateAPIToken = %+v", tok)
	}
	if _, err := db.CreateAPIToken(ctx, ci.APIToken{UserID: u.ID, Name: "dup", TokenHash: []byte("hash1")}); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("duplicate hash: %v", err)
	}
	got := must(db.APITokenByHash(ctx, []byte("hash1")))
	if got.ID != tok.ID || got.UserID != u.ID || got.LastUsedAt != nil {
		t.Fatalf("APITokenByHash = %+v", got)
	}
	if err := db.TouchAPIToken(ctx, tok.ID, c.Now()); err != nil {
		t.Fatal(err)
	}
	list := must(db.ListAPITokens(ctx, u.ID))
	if len(list) != 1 || list[0].LastUsedAt == nil || !list[0].LastUsedAt.Equal(c.Now().Truncate(time.Microsecond)) {
		t.Fatalf("ListAPITokens = %+v", list)
	}
	if _, err := db.RevokeAPIToken(ctx, v.ID, tok.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("revoke another user's token: %v", err)
	}
	r := must(db.RevokeAPIToken(ctx, u.ID, tok.ID))
	if r.RevokedAt == nil {
		t.Fatalf("RevokeAPIToken = %+v", r)
	}
	if _, err := db.APITokenByHash(ctx, []byte("hash1")); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("revoked token still valid: %v", err)
	}
	if _, err := db.RevokeAPIToken(ctx, u.ID, tok.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("double revoke: %v", err)
	}
}

func testSetupLinks(t *testing.T, db *store.DB, c *clock) {
	ctx := context.Background()
	if err := db.CreateSetupLink(ctx, []byte("s1"), c.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ok := must(db.SetupLinkValid(ctx, []byte("s1"))); !ok {
		t.Fatal("fresh setup link not valid")
	}
	if ok := must(db.SetupLinkValid(ctx, []byte("nope"))); ok {
		t.Fatal("unknown setup link valid")
	}
	err := db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.ConsumeSetupLink(ctx, []byte("s1")); err != nil {
			return err
		}
		_, err := tx.CreateUser(ctx, "first@acme.test", "", "h")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.ConsumeSetupLink(ctx, []byte("s1")) }); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("reused setup link: %v", err)
	}
	if err := db.CreateSetupLink(ctx, []byte("s2"), c.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.ConsumeSetupLink(ctx, []byte("s2")) }); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("setup link after a user exists: %v", err)
	}
	if err := db.CreateSetupLink(ctx, []byte("s3"), c.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	c.Add(2 * time.Hour)
	if ok := must(db.SetupLinkValid(ctx, []byte("s3"))); ok {
		t.Fatal("expired setup link valid")
	}
}

func testAudit(t *testing.T, db *store.DB, c *clock) {
	ctx := context.Background()
	o := must(db.CreateOrg(ctx, "acme", "Acme"))
	p := must(db.CreateOrg(ctx, "other", "Other"))
	for i, action := range []string{"signin", "token.create", "signin"} {
		err := db.AppendAudit(ctx, ci.AuditEvent{OrgID: &o.ID, Actor: "a@acme.test", Action: action, Target: "x",
			Outcome: ci.OutcomeSuccess, ClientIP: "127.0.0.1", Details: map[string]string{"n": string(rune('0' + i))}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AppendAudit(ctx, ci.AuditEvent{OrgID: &p.ID, Actor: "z", Action: "signin", Outcome: ci.OutcomeFailure}); err != nil {
		t.Fatal(err)
	}
	evs := must(db.ListAudit(ctx, store.AuditFilter{OrgID: o.ID}))
	if len(evs) != 3 || evs[0].Action != "signin" || evs[0].Details["n"] != "2" || evs[1].Action != "token.create" {
		t.Fatalf("ListAudit = %+v", evs)
	}
	older := must(db.ListAudit(ctx, store.AuditFilter{OrgID: o.ID, BeforeID: evs[0].ID, Limit: 1}))
	if len(older) != 1 || older[0].ID != evs[1].ID {
		t.Fatalf("ListAudit page = %+v", older)
	}
	only := must(db.ListAudit(ctx, store.AuditFilter{OrgID: o.ID, Action: "token.create"}))
	if len(only) != 1 {
		t.Fatalf("ListAudit by action = %+v", only)
	}
	// Append-only: an UPDATE is refused by the database itself.
	if _, err := db.Writer().ExecContext(ctx, `UPDATE audit_events SET outcome = 'success'`); err == nil {
		t.Fatal("audit_events accepted an UPDATE")
	}
}

func testTxRollback(t *testing.T, db *store.DB, _ *clock) {
	ctx := context.Background()
	boom := errors.New("boom")
	err := db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.CreateOrg(ctx, "acme", "Acme"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v", err)
	}
	if _, err := db.OrgBySlug(ctx, "acme"); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("rolled-back org exists: %v", err)
	}
}

func testConcurrentWrites(t *testing.T, db *store.DB, _ *clock) {
	ctx := context.Background()
	o := must(db.CreateOrg(ctx, "acme", "Acme"))
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- db.AppendAudit(ctx, ci.AuditEvent{OrgID: &o.ID, Actor: "a", Action: "x", Target: string(rune('a' + i%26)), Outcome: "success"})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	evs := must(db.ListAudit(ctx, store.AuditFilter{OrgID: o.ID, Limit: 500}))
	if len(evs) != 40 {
		t.Fatalf("got %d events, want 40", len(evs))
	}
}
