package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// Invitations: an admin invites an email with a role; the invitee opens the
// one-time link and joins. One invitation exists per organization and email:
// inviting again replaces it, and revoking deletes it, so in both cases the
// old link is unknown afterwards. Accepting marks it used (compare-and-swap)
// and adds the membership in the same transaction.

const invitationCols = `i.id, i.org_id, i.email, i.role, i.token_hash, i.invited_by, COALESCE(u.email, ''),
	i.created_at, i.expires_at, i.accepted_at`

const invitationFrom = ` FROM invitations i LEFT JOIN users u ON u.id = i.invited_by`

func scanInvitation(s interface{ Scan(...any) error }) (ci.Invitation, error) {
	var inv ci.Invitation
	var role, th string
	var by, acc sql.NullInt64
	var c, e int64
	err := s.Scan(&inv.ID, &inv.OrgID, &inv.Email, &role, &th, &by, &inv.InviterEmail, &c, &e, &acc)
	inv.Role = ci.Role(role)
	inv.TokenHash, _ = hex.DecodeString(th)
	if by.Valid {
		inv.InvitedBy = &by.Int64
	}
	inv.CreatedAt, inv.ExpiresAt, inv.AcceptedAt = fromMicros(c), fromMicros(e), fromOptMicros(acc)
	return inv, err
}

// CreateInvitation stores an invitation (only the hash of its link's secret)
// for inv.OrgID, inv.Email and inv.Role, invited by inv.InvitedBy and valid
// until inv.ExpiresAt. An earlier invitation of the same email to the same
// organization, pending or not, is replaced: replaced reports whether one
// was pending.
func (db *DB) CreateInvitation(ctx context.Context, inv ci.Invitation) (out ci.Invitation, replaced bool, err error) {
	inv.Email = strings.ToLower(strings.TrimSpace(inv.Email))
	err = db.InTx(ctx, func(tx *Tx) error {
		now := micros(tx.now())
		res, err := tx.w.ExecContext(ctx,
			`DELETE FROM invitations WHERE org_id = $1 AND email = $2 AND accepted_at IS NULL AND expires_at > $3`,
			inv.OrgID, inv.Email, now)
		if err != nil {
			return fmt.Errorf("replace invitation: %w", err)
		}
		n, _ := res.RowsAffected()
		replaced = n > 0
		if _, err := tx.w.ExecContext(ctx, `DELETE FROM invitations WHERE org_id = $1 AND email = $2`, inv.OrgID, inv.Email); err != nil {
			return fmt.Errorf("replace invitation: %w", err)
		}
		var by sql.NullInt64
		if inv.InvitedBy != nil {
			by = sql.NullInt64{Int64: *inv.InvitedBy, Valid: true}
		}
		var id int64
		err = tx.w.QueryRowContext(ctx,
			`INSERT INTO invitations (org_id, email, role, token_hash, invited_by, created_at, expires_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			inv.OrgID, inv.Email, string(inv.Role), hexHash(inv.TokenHash), by, now, micros(inv.ExpiresAt)).Scan(&id)
		if err != nil {
			return tx.conflict(err, "invitation")
		}
		out, err = scanInvitation(tx.w.QueryRowContext(ctx, `SELECT `+invitationCols+invitationFrom+` WHERE i.id = $1`, id))
		return err
	})
	if err != nil {
		return ci.Invitation{}, false, err
	}
	return out, replaced, nil
}

// ListInvitations lists an organization's pending invitations (not accepted,
// not expired), by email.
func (db *DB) ListInvitations(ctx context.Context, orgID int64) ([]ci.Invitation, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT `+invitationCols+invitationFrom+`
		WHERE i.org_id = $1 AND i.accepted_at IS NULL AND i.expires_at > $2 ORDER BY i.email`, orgID, micros(db.now()))
	if err != nil {
		return nil, fmt.Errorf("list invitations: %w", err)
	}
	defer rows.Close()
	var out []ci.Invitation
	for rows.Next() {
		inv, err := scanInvitation(rows)
		if err != nil {
			return nil, fmt.Errorf("list invitations: %w", err)
		}
		out = append(out, inv)
	}
	return out, rows.Err()
}

// RevokeInvitation deletes one of the organization's pending invitations and
// returns it. Another organization's invitation, an accepted or expired one,
// or an unknown id is ci.ErrNotFound.
func (db *DB) RevokeInvitation(ctx context.Context, orgID, id int64) (ci.Invitation, error) {
	var inv ci.Invitation
	err := db.InTx(ctx, func(tx *Tx) error {
		var err error
		inv, err = scanInvitation(tx.w.QueryRowContext(ctx, `SELECT `+invitationCols+invitationFrom+`
			WHERE i.id = $1 AND i.org_id = $2 AND i.accepted_at IS NULL AND i.expires_at > $3`, id, orgID, micros(tx.now())))
		if err != nil {
			return notFound(err, "invitation")
		}
		res, err := tx.w.ExecContext(ctx, `DELETE FROM invitations WHERE id = $1`, id)
		return affected(res, err, "invitation")
	})
	if err != nil {
		return ci.Invitation{}, err
	}
	return inv, nil
}

// InvitationByHash loads a pending invitation (not accepted, not expired, not
// revoked or replaced) by the hash of its link's secret; any other is
// ci.ErrNotFound.
func (db *DB) InvitationByHash(ctx context.Context, hash []byte) (ci.Invitation, error) {
	inv, err := scanInvitation(db.reader.QueryRowContext(ctx, `SELECT `+invitationCols+invitationFrom+`
		WHERE i.token_hash = $1 AND i.accepted_at IS NULL AND i.expires_at > $2`, hexHash(hash), micros(db.now())))
	if err != nil {
		return ci.Invitation{}, notFound(err, "invitation")
	}
	return inv, nil
}

// AcceptInvitation uses the pending invitation with this hash for user inside
// tx: it marks the invitation accepted, only if it is still pending, is
// for user's email and its inviter is still an admin of the organization
// (compare-and-swap, so of two concurrent accepts one wins; an invitation
// created while its inviter was being removed dies with them), and makes
// user a member with the invitation's role. Anything else
// is ci.ErrNotFound and changes nothing. joined is false when user was
// already a member: the invitation is used up all the same and the existing
// role is kept.
func (tx *Tx) AcceptInvitation(ctx context.Context, hash []byte, user ci.User) (inv ci.Invitation, joined bool, err error) {
	now := micros(tx.now())
	var id int64
	err = tx.w.QueryRowContext(ctx,
		`UPDATE invitations SET accepted_at = $1, accepted_by = $2
		 WHERE token_hash = $3 AND email = $4 AND accepted_at IS NULL AND expires_at > $1
		   AND (invited_by IS NULL OR EXISTS (SELECT 1 FROM memberships m
		     WHERE m.org_id = invitations.org_id AND m.user_id = invitations.invited_by AND m.role = 'admin'))
		 RETURNING id`,
		now, user.ID, hexHash(hash), strings.ToLower(user.Email)).Scan(&id)
	if err != nil {
		return ci.Invitation{}, false, notFound(err, "invitation")
	}
	if inv, err = scanInvitation(tx.w.QueryRowContext(ctx, `SELECT `+invitationCols+invitationFrom+` WHERE i.id = $1`, id)); err != nil {
		return ci.Invitation{}, false, fmt.Errorf("load invitation: %w", err)
	}
	// Look first rather than catch the unique violation: on PostgreSQL a
	// failed statement aborts the whole transaction.
	var n int
	if err := tx.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND user_id = $2`,
		inv.OrgID, user.ID).Scan(&n); err != nil {
		return ci.Invitation{}, false, fmt.Errorf("check membership: %w", err)
	}
	if n > 0 {
		return inv, false, nil
	}
	if err := tx.AddMember(ctx, inv.OrgID, user.ID, inv.Role); err != nil {
		return ci.Invitation{}, false, err
	}
	return inv, true, nil
}

// revokeInvitationsBy deletes the pending invitations userID created in
// orgID (they were removed or are no longer an admin) and returns how many.
func (tx *Tx) revokeInvitationsBy(ctx context.Context, orgID, userID int64) (int64, error) {
	res, err := tx.w.ExecContext(ctx,
		`DELETE FROM invitations WHERE org_id = $1 AND invited_by = $2 AND accepted_at IS NULL AND expires_at > $3`,
		orgID, userID, micros(tx.now()))
	if err != nil {
		return 0, fmt.Errorf("revoke invitations: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// deleteExpiredInvitations is part of DeleteExpired: invitations whose link
// has expired, used or not, are of no further use (the audit log keeps
// what happened).
const deleteExpiredInvitations = `DELETE FROM invitations WHERE expires_at <= $1`
