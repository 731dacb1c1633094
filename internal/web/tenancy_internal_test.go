package web

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/store/sqlite"
)

// newTestServer returns a Server on a fresh, migrated SQLite database.
func newTestServer(t *testing.T) (*Server, *store.DB) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), sqlite.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return New(Options{DB: db, Logger: slog.New(slog.DiscardHandler)}), db
}

// TestMemberNameOnlyNamesMembers checks that the messages of the members
// page name only members of the page's organization: a user id of another
// organization never yields that user's email.
func TestMemberNameOnlyNamesMembers(t *testing.T) {
	s, db := newTestServer(t)
	ctx := context.Background()
	acme, err := db.CreateOrg(ctx, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	globex, err := db.CreateOrg(ctx, "globex", "Globex")
	if err != nil {
		t.Fatal(err)
	}
	ann, err := db.CreateUser(ctx, "ann@acme.test", "Ann", "x")
	if err != nil {
		t.Fatal(err)
	}
	gus, err := db.CreateUser(ctx, "gus@globex.test", "Gus", "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AddMember(ctx, acme.ID, ann.ID, ci.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if err := db.AddMember(ctx, globex.ID, gus.ID, ci.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	p := &principal{User: ann, Org: &acme, Role: ci.RoleAdmin}
	r := httptest.NewRequest("POST", "/orgs/acme/settings/members/1/remove", nil)
	for _, c := range []struct {
		id   int64
		want string
	}{
		{ann.ID, "ann@acme.test"},
		{gus.ID, "member " + strconv.FormatInt(gus.ID, 10)},
		{999, "member 999"},
	} {
		if got := s.memberName(r, p, c.id); got != c.want {
			t.Errorf("memberName(%d) = %q, want %q", c.id, got, c.want)
		}
	}
}
