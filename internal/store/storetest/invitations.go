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

func runInvitations(t *testing.T, fresh func(t *testing.T) (*store.DB, *clock)) {
	t.Run("Invitations", func(t *testing.T) { cur = t; db, c := fresh(t); testInvitations(t, db, c) })
	t.Run("InvitationAccept", func(t *testing.T) { cur = t; db, c := fresh(t); testInvitationAccept(t, db, c) })
	t.Run("InvitationAcceptRace", func(t *testing.T) { cur = t; db, c := fresh(t); testInvitationAcceptRace(t, db, c) })
	t.Run("InvitationsOfARemovedAdmin", func(t *testing.T) { cur = t; db, c := fresh(t); testInvitationsOfARemovedAdmin(t, db, c) })
}

// accept runs AcceptInvitation in its own transaction.
func accept(db *store.DB, hash []byte, u ci.User) (inv ci.Invitation, joined bool, err error) {
	err = db.InTx(context.Background(), func(tx *store.Tx) error {
		var err error
		inv, joined, err = tx.AcceptInvitation(context.Background(), hash, u)
		return err
	})
	return inv, joined, err
}

// testInvitations checks creating, listing, replacing, revoking and
// expiring invitations, and that an organization sees only its own.
func testInvitations(t *testing.T, db *store.DB, c *clock) {
	ctx := context.Background()
	acme := must(db.CreateOrg(ctx, "acme", "Acme"))
	other := must(db.CreateOrg(ctx, "other", "Other"))
	ada := must(db.CreateUser(ctx, "ada@acme.test", "Ada", "h"))
	exp := c.Now().Add(7 * 24 * time.Hour)
	inv, replaced, err := db.CreateInvitation(ctx, ci.Invitation{OrgID: acme.ID, Email: " Bob@Acme.Test ", Role: ci.RoleMember,
		TokenHash: []byte{1}, InvitedBy: &ada.ID, ExpiresAt: exp})
	if err != nil || replaced {
		t.Fatalf("CreateInvitation = %+v, %v, %v", inv, replaced, err)
	}
	if inv.ID == 0 || inv.Email != "bob@acme.test" || inv.Role != ci.RoleMember || inv.InviterEmail != "ada@acme.test" ||
		inv.InvitedBy == nil || *inv.InvitedBy != ada.ID || !inv.ExpiresAt.Equal(exp.Truncate(time.Microsecond)) || inv.AcceptedAt != nil {
		t.Fatalf("CreateInvitation = %+v", inv)
	}
	got := must(db.InvitationByHash(ctx, []byte{1}))
	if got.ID != inv.ID || got.OrgID != acme.ID {
		t.Fatalf("InvitationByHash = %+v", got)
	}
	// Inviting the same email again replaces the invitation: the old link dies.
	inv2, replaced, err := db.CreateInvitation(ctx, ci.Invitation{OrgID: acme.ID, Email: "bob@acme.test", Role: ci.RoleAdmin,
		TokenHash: []byte{2}, InvitedBy: &ada.ID, ExpiresAt: exp})
	if err != nil || !replaced || inv2.ID == inv.ID || inv2.Role != ci.RoleAdmin {
		t.Fatalf("second CreateInvitation = %+v, %v, %v", inv2, replaced, err)
	}
	if _, err := db.InvitationByHash(ctx, []byte{1}); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("replaced invitation still valid: %v", err)
	}
	// The same email may be invited to another organization independently.
	must3(db.CreateInvitation(ctx, ci.Invitation{OrgID: other.ID, Email: "bob@acme.test", Role: ci.RoleMember,
		TokenHash: []byte{3}, ExpiresAt: exp}))
	must3(db.CreateInvitation(ctx, ci.Invitation{OrgID: acme.ID, Email: "cy@acme.test", Role: ci.RoleMember,
		TokenHash: []byte{4}, InvitedBy: &ada.ID, ExpiresAt: c.Now().Add(time.Hour)}))
	if _, _, err := db.CreateInvitation(ctx, ci.Invitation{OrgID: acme.ID, Email: "dup@acme.test", Role: ci.RoleMember,
		TokenHash: []byte{4}, ExpiresAt: exp}); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("duplicate token hash: %v", err)
	}
	list := must(db.ListInvitations(ctx, acme.ID))
	if len(list) != 2 || list[0].Email != "bob@acme.test" || list[0].ID != inv2.ID || list[1].Email != "cy@acme.test" {
		t.Fatalf("ListInvitations = %+v", list)
	}
	// Revoking is per organization: another organization's id is not found.
	if _, err := db.RevokeInvitation(ctx, other.ID, inv2.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("revoke from another organization: %v", err)
	}
	rv := must(db.RevokeInvitation(ctx, acme.ID, inv2.ID))
	if rv.Email != "bob@acme.test" {
		t.Fatalf("RevokeInvitation = %+v", rv)
	}
	if _, err := db.RevokeInvitation(ctx, acme.ID, inv2.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	if _, err := db.InvitationByHash(ctx, []byte{2}); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("revoked invitation still valid: %v", err)
	}
	if l := must(db.ListInvitations(ctx, other.ID)); len(l) != 1 || l[0].InvitedBy != nil || l[0].InviterEmail != "" {
		t.Fatalf("other organization's invitations = %+v", l)
	}
	// Expiry: the hour-long invitation is no longer valid or listed, can
	// no longer be revoked, and the cleanup removes it.
	c.Add(2 * time.Hour)
	if _, err := db.InvitationByHash(ctx, []byte{4}); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("expired invitation still valid: %v", err)
	}
	if l := must(db.ListInvitations(ctx, acme.ID)); len(l) != 0 {
		t.Fatalf("expired invitation listed: %+v", l)
	}
	if n := must(db.DeleteExpired(ctx, c.Now())); n != 1 {
		t.Fatalf("DeleteExpired = %d, want 1 (the expired invitation)", n)
	}
	// Deleting the organization deletes its invitations.
	c.Add(8 * 24 * time.Hour)
	if n := must(db.DeleteExpired(ctx, c.Now())); n != 1 {
		t.Fatalf("DeleteExpired after a week = %d, want 1", n)
	}
}

func must3[A, B any](a A, b B, err error) A {
	if err != nil {
		cur.Helper()
		cur.Fatal(err)
	}
	return a
}

// testInvitationAccept checks that accepting needs the invited email, is
// single use, adds the membership with the invited role, and refuses
// expired invitations.
func testInvitationAccept(t *testing.T, db *store.DB, c *clock) {
	ctx := context.Background()
	acme := must(db.CreateOrg(ctx, "acme", "Acme"))
	bob := must(db.CreateUser(ctx, "bob@acme.test", "Bob", "h"))
	eve := must(db.CreateUser(ctx, "eve@acme.test", "Eve", "h"))
	exp := c.Now().Add(time.Hour)
	must3(db.CreateInvitation(ctx, ci.Invitation{OrgID: acme.ID, Email: "bob@acme.test", Role: ci.RoleAdmin, TokenHash: []byte{1}, ExpiresAt: exp}))
	if _, _, err := accept(db, []byte{1}, eve); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("accept as another user: %v", err)
	}
	if _, err := db.Membership(ctx, acme.ID, eve.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("the wrong user joined: %v", err)
	}
	if _, _, err := accept(db, []byte{9}, bob); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("accept an unknown link: %v", err)
	}
	inv, joined, err := accept(db, []byte{1}, bob)
	if err != nil || !joined || inv.OrgID != acme.ID || inv.AcceptedAt == nil {
		t.Fatalf("accept = %+v, %v, %v", inv, joined, err)
	}
	if m := must(db.Membership(ctx, acme.ID, bob.ID)); m.Role != ci.RoleAdmin {
		t.Fatalf("membership after accept = %+v", m)
	}
	if _, _, err := accept(db, []byte{1}, bob); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("accept twice: %v", err)
	}
	if l := must(db.ListInvitations(ctx, acme.ID)); len(l) != 0 {
		t.Fatalf("accepted invitation still listed: %+v", l)
	}
	if _, err := db.RevokeInvitation(ctx, acme.ID, inv.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("revoke an accepted invitation: %v", err)
	}
	// An invitation for someone already a member is used up; the role stays.
	must3(db.CreateInvitation(ctx, ci.Invitation{OrgID: acme.ID, Email: "bob@acme.test", Role: ci.RoleMember, TokenHash: []byte{2}, ExpiresAt: exp}))
	if _, joined, err := accept(db, []byte{2}, bob); err != nil || joined {
		t.Fatalf("accept as a member already = %v, %v", joined, err)
	}
	if m := must(db.Membership(ctx, acme.ID, bob.ID)); m.Role != ci.RoleAdmin {
		t.Fatalf("role changed by a second invitation: %+v", m)
	}
	// Expired links cannot be accepted; a failed accept rolls back the
	// rest of the transaction (here: the new user).
	must3(db.CreateInvitation(ctx, ci.Invitation{OrgID: acme.ID, Email: "cy@acme.test", Role: ci.RoleMember, TokenHash: []byte{3}, ExpiresAt: exp}))
	c.Add(2 * time.Hour)
	err = db.InTx(ctx, func(tx *store.Tx) error {
		u, err := tx.CreateUser(ctx, "cy@acme.test", "Cy", "h")
		if err != nil {
			return err
		}
		_, _, err = tx.AcceptInvitation(ctx, []byte{3}, u)
		return err
	})
	if !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("accept an expired invitation: %v", err)
	}
	if _, err := db.UserByEmail(ctx, "cy@acme.test"); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("user of a failed accept exists: %v", err)
	}
}

// testInvitationAcceptRace accepts one invitation from many goroutines at
// once: exactly one wins.
func testInvitationAcceptRace(t *testing.T, db *store.DB, c *clock) {
	ctx := context.Background()
	acme := must(db.CreateOrg(ctx, "acme", "Acme"))
	bob := must(db.CreateUser(ctx, "bob@acme.test", "Bob", "h"))
	must3(db.CreateInvitation(ctx, ci.Invitation{OrgID: acme.ID, Email: "bob@acme.test", Role: ci.RoleMember,
		TokenHash: []byte{1}, ExpiresAt: c.Now().Add(time.Hour)}))
	const n = 8
	var wg sync.WaitGroup
	start := make(chan struct{})
	type result struct {
		joined bool
		err    error
	}
	results := make(chan result, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, joined, err := accept(db, []byte{1}, bob)
			results <- result{joined, err}
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	wins := 0
	for r := range results {
		switch {
		case r.err == nil && r.joined:
			wins++
		case errors.Is(r.err, ci.ErrNotFound):
		default:
			t.Fatalf("concurrent accept: joined=%v err=%v", r.joined, r.err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent accepts won, want exactly 1", wins)
	}
	if m := must(db.ListMembers(ctx, acme.ID)); len(m) != 1 {
		t.Fatalf("members after the race = %+v", m)
	}
}

// testInvitationsOfARemovedAdmin checks that an admin's pending invitations
// go when they are removed or demoted (a link they made for another address
// of theirs does not bring them back), and that an invitation whose inviter
// is no longer an admin cannot be accepted even if it was left behind (as
// when it was created while the inviter was being removed).
func testInvitationsOfARemovedAdmin(t *testing.T, db *store.DB, c *clock) {
	ctx := context.Background()
	acme := must(db.CreateOrg(ctx, "acme", "Acme"))
	other := must(db.CreateOrg(ctx, "other", "Other"))
	ada := must(db.CreateUser(ctx, "ada@acme.test", "Ada", "h"))
	mal := must(db.CreateUser(ctx, "mal@acme.test", "Mal", "h"))
	alt := must(db.CreateUser(ctx, "alt@evil.test", "Alt", "h"))
	for _, u := range []ci.User{ada, mal} {
		if err := db.AddMember(ctx, acme.ID, u.ID, ci.RoleAdmin); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AddMember(ctx, other.ID, mal.ID, ci.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	exp := c.Now().Add(time.Hour)
	must3(db.CreateInvitation(ctx, ci.Invitation{OrgID: acme.ID, Email: "alt@evil.test", Role: ci.RoleAdmin, TokenHash: []byte{1}, InvitedBy: &mal.ID, ExpiresAt: exp}))
	must3(db.CreateInvitation(ctx, ci.Invitation{OrgID: acme.ID, Email: "cy@acme.test", Role: ci.RoleMember, TokenHash: []byte{2}, InvitedBy: &ada.ID, ExpiresAt: exp}))
	must3(db.CreateInvitation(ctx, ci.Invitation{OrgID: other.ID, Email: "dee@other.test", Role: ci.RoleMember, TokenHash: []byte{3}, InvitedBy: &mal.ID, ExpiresAt: exp}))

	// Demoting Mal revokes Mal's pending invitation in acme only.
	if n, err := db.SetMemberRole(ctx, acme.ID, mal.ID, ci.RoleMember); err != nil || n != 1 {
		t.Fatalf("demote = %d, %v; want 1 invitation revoked", n, err)
	}
	if _, err := db.InvitationByHash(ctx, []byte{1}); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("the demoted admin's invitation is still valid: %v", err)
	}
	for _, h := range [][]byte{{2}, {3}} {
		if _, err := db.InvitationByHash(ctx, h); err != nil {
			t.Fatalf("another invitation went with the demotion: %v", err)
		}
	}
	if n, err := db.SetMemberRole(ctx, acme.ID, mal.ID, ci.RoleAdmin); err != nil || n != 0 {
		t.Fatalf("promote = %d, %v", n, err)
	}

	// Removing Mal revokes what Mal created afterwards.
	must3(db.CreateInvitation(ctx, ci.Invitation{OrgID: acme.ID, Email: "alt@evil.test", Role: ci.RoleAdmin, TokenHash: []byte{4}, InvitedBy: &mal.ID, ExpiresAt: exp}))
	if n, err := db.RemoveMember(ctx, acme.ID, mal.ID); err != nil || n != 1 {
		t.Fatalf("remove = %d, %v; want 1 invitation revoked", n, err)
	}
	if _, _, err := accept(db, []byte{4}, alt); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("accept the removed admin's invitation: %v", err)
	}
	// An invitation left behind by a removed inviter (created in a race
	// with the removal) is refused at accept time and changes nothing.
	must3(db.CreateInvitation(ctx, ci.Invitation{OrgID: acme.ID, Email: "alt@evil.test", Role: ci.RoleAdmin, TokenHash: []byte{5}, InvitedBy: &mal.ID, ExpiresAt: exp}))
	if _, _, err := accept(db, []byte{5}, alt); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("accept an invitation whose inviter is no longer an admin: %v", err)
	}
	if _, err := db.Membership(ctx, acme.ID, alt.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("joined through a removed admin's invitation: %v", err)
	}
	// Ada's invitation still works.
	cy := must(db.CreateUser(ctx, "cy@acme.test", "Cy", "h"))
	if _, joined, err := accept(db, []byte{2}, cy); err != nil || !joined {
		t.Fatalf("accept the remaining admin's invitation = %v, %v", joined, err)
	}
}
