package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// CreateOrg inserts an organization. A taken slug is ci.ErrConflict.
func (x q) CreateOrg(ctx context.Context, slug, name string) (ci.Org, error) {
	o := ci.Org{Slug: slug, Name: name, CreatedAt: fromMicros(micros(x.now()))}
	err := x.w.QueryRowContext(ctx,
		`INSERT INTO orgs (slug, name, created_at) VALUES ($1, $2, $3) RETURNING id`,
		slug, name, micros(o.CreatedAt)).Scan(&o.ID)
	if err != nil {
		return ci.Org{}, x.conflict(err, fmt.Sprintf("organization %q", slug))
	}
	return o, nil
}

// CreateOrg inserts an organization.
func (db *DB) CreateOrg(ctx context.Context, slug, name string) (ci.Org, error) {
	return db.q().CreateOrg(ctx, slug, name)
}

const orgCols = `id, slug, name, created_at`

func scanOrg(s interface{ Scan(...any) error }) (ci.Org, error) {
	var o ci.Org
	var created int64
	err := s.Scan(&o.ID, &o.Slug, &o.Name, &created)
	o.CreatedAt = fromMicros(created)
	return o, err
}

// OrgBySlug loads an organization by slug.
func (x q) OrgBySlug(ctx context.Context, slug string) (ci.Org, error) {
	o, err := scanOrg(x.r.QueryRowContext(ctx, `SELECT `+orgCols+` FROM orgs WHERE slug = $1`, slug))
	if err != nil {
		return ci.Org{}, notFound(err, fmt.Sprintf("organization %q", slug))
	}
	return o, nil
}

// OrgBySlug loads an organization by slug.
func (db *DB) OrgBySlug(ctx context.Context, slug string) (ci.Org, error) {
	return db.q().OrgBySlug(ctx, slug)
}

// OrgByID loads an organization by id.
func (db *DB) OrgByID(ctx context.Context, id int64) (ci.Org, error) {
	o, err := scanOrg(db.reader.QueryRowContext(ctx, `SELECT `+orgCols+` FROM orgs WHERE id = $1`, id))
	if err != nil {
		return ci.Org{}, notFound(err, fmt.Sprintf("organization %d", id))
	}
	return o, nil
}

// ListOrgs lists every organization, by slug.
func (db *DB) ListOrgs(ctx context.Context) ([]ci.Org, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT `+orgCols+` FROM orgs ORDER BY slug`)
	if err != nil {
		return nil, fmt.Errorf("list organizations: %w", err)
	}
	defer rows.Close()
	var out []ci.Org
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, fmt.Errorf("list organizations: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// CreateUser inserts a user. Emails are stored lower-cased; a taken email is
// ci.ErrConflict.
func (x q) CreateUser(ctx context.Context, email, name, passwordHash string) (ci.User, error) {
	u := ci.User{Email: strings.ToLower(strings.TrimSpace(email)), Name: name, PasswordHash: passwordHash,
		CreatedAt: fromMicros(micros(x.now()))}
	err := x.w.QueryRowContext(ctx,
		`INSERT INTO users (email, name, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
		u.Email, u.Name, u.PasswordHash, micros(u.CreatedAt)).Scan(&u.ID)
	if err != nil {
		return ci.User{}, x.conflict(err, "a user with this email")
	}
	return u, nil
}

// CreateUser inserts a user.
func (db *DB) CreateUser(ctx context.Context, email, name, passwordHash string) (ci.User, error) {
	return db.q().CreateUser(ctx, email, name, passwordHash)
}

const userCols = `id, email, name, password_hash, created_at`

func scanUser(s interface{ Scan(...any) error }) (ci.User, error) {
	var u ci.User
	var created int64
	err := s.Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &created)
	u.CreatedAt = fromMicros(created)
	return u, err
}

// UserByEmail loads a user by email, case-insensitively.
func (db *DB) UserByEmail(ctx context.Context, email string) (ci.User, error) {
	u, err := scanUser(db.reader.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE email = $1`,
		strings.ToLower(strings.TrimSpace(email))))
	if err != nil {
		return ci.User{}, notFound(err, "user")
	}
	return u, nil
}

// UserByID loads a user by id.
func (db *DB) UserByID(ctx context.Context, id int64) (ci.User, error) {
	u, err := scanUser(db.reader.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	if err != nil {
		return ci.User{}, notFound(err, "user")
	}
	return u, nil
}

// SetPasswordHash replaces a user's password hash.
func (db *DB) SetPasswordHash(ctx context.Context, userID int64, hash string) error {
	res, err := db.writer.ExecContext(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2`, hash, userID)
	return affected(res, err, "user")
}

// CountUsers returns how many users exist.
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := db.reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// AddMember makes a user a member of an organization. An existing membership
// is ci.ErrConflict.
func (x q) AddMember(ctx context.Context, orgID, userID int64, role ci.Role) error {
	_, err := x.w.ExecContext(ctx,
		`INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)`,
		orgID, userID, string(role), micros(x.now()))
	return x.conflict(err, "membership")
}

// AddMember makes a user a member of an organization.
func (db *DB) AddMember(ctx context.Context, orgID, userID int64, role ci.Role) error {
	return db.q().AddMember(ctx, orgID, userID, role)
}

// Membership loads a user's membership of an organization.
func (db *DB) Membership(ctx context.Context, orgID, userID int64) (ci.Membership, error) {
	m := ci.Membership{OrgID: orgID, UserID: userID}
	var created int64
	var role string
	err := db.reader.QueryRowContext(ctx,
		`SELECT role, created_at FROM memberships WHERE org_id = $1 AND user_id = $2`, orgID, userID).
		Scan(&role, &created)
	if err != nil {
		return ci.Membership{}, notFound(err, "membership")
	}
	m.Role, m.CreatedAt = ci.Role(role), fromMicros(created)
	return m, nil
}

// ListMembers lists an organization's members by email.
func (db *DB) ListMembers(ctx context.Context, orgID int64) ([]ci.Member, error) {
	rows, err := db.reader.QueryContext(ctx,
		`SELECT u.id, u.email, u.name, u.password_hash, u.created_at, m.role, m.created_at
		 FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 ORDER BY u.email`, orgID)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	defer rows.Close()
	var out []ci.Member
	for rows.Next() {
		var m ci.Member
		var uc, mc int64
		var role string
		if err := rows.Scan(&m.User.ID, &m.User.Email, &m.User.Name, &m.User.PasswordHash, &uc, &role, &mc); err != nil {
			return nil, fmt.Errorf("list members: %w", err)
		}
		m.User.PasswordHash = ""
		m.User.CreatedAt, m.Role, m.CreatedAt = fromMicros(uc), ci.Role(role), fromMicros(mc)
		out = append(out, m)
	}
	return out, rows.Err()
}

// ListUserOrgs lists the organizations a user belongs to, with the role.
func (db *DB) ListUserOrgs(ctx context.Context, userID int64) ([]ci.OrgRole, error) {
	rows, err := db.reader.QueryContext(ctx,
		`SELECT o.id, o.slug, o.name, o.created_at, m.role FROM memberships m JOIN orgs o ON o.id = m.org_id
		 WHERE m.user_id = $1 ORDER BY o.slug`, userID)
	if err != nil {
		return nil, fmt.Errorf("list organizations of user: %w", err)
	}
	defer rows.Close()
	var out []ci.OrgRole
	for rows.Next() {
		var r ci.OrgRole
		var created int64
		var role string
		if err := rows.Scan(&r.Org.ID, &r.Org.Slug, &r.Org.Name, &created, &role); err != nil {
			return nil, fmt.Errorf("list organizations of user: %w", err)
		}
		r.Org.CreatedAt, r.Role = fromMicros(created), ci.Role(role)
		out = append(out, r)
	}
	return out, rows.Err()
}

// SetMemberRole changes a member's role. It refuses (ci.ErrConflict) to demote
// the organization's last admin. Demoting an admin revokes the pending
// invitations they created in the organization, in the same transaction:
// revoked says how many.
func (db *DB) SetMemberRole(ctx context.Context, orgID, userID int64, role ci.Role) (revoked int64, err error) {
	err = db.InTx(ctx, func(tx *Tx) error {
		if role != ci.RoleAdmin {
			if err := tx.keepAnAdmin(ctx, orgID, userID); err != nil {
				return err
			}
		}
		res, err := tx.w.ExecContext(ctx, `UPDATE memberships SET role = $1 WHERE org_id = $2 AND user_id = $3`,
			string(role), orgID, userID)
		if err := affected(res, err, "membership"); err != nil {
			return err
		}
		if role != ci.RoleAdmin {
			revoked, err = tx.revokeInvitationsBy(ctx, orgID, userID)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	return revoked, nil
}

// RemoveMember removes a membership. It refuses (ci.ErrConflict) to remove the
// organization's last admin. The pending invitations the member created in
// the organization are revoked in the same transaction (revoked says how
// many), so someone removed cannot come back through a link they made.
func (db *DB) RemoveMember(ctx context.Context, orgID, userID int64) (revoked int64, err error) {
	err = db.InTx(ctx, func(tx *Tx) error {
		if err := tx.keepAnAdmin(ctx, orgID, userID); err != nil {
			return err
		}
		res, err := tx.w.ExecContext(ctx, `DELETE FROM memberships WHERE org_id = $1 AND user_id = $2`, orgID, userID)
		if err := affected(res, err, "membership"); err != nil {
			return err
		}
		revoked, err = tx.revokeInvitationsBy(ctx, orgID, userID)
		return err
	})
	if err != nil {
		return 0, err
	}
	return revoked, nil
}

// keepAnAdmin fails when userID is the only admin of orgID.
func (x q) keepAnAdmin(ctx context.Context, orgID, userID int64) error {
	var others int
	var isAdmin int
	err := x.w.QueryRowContext(ctx,
		`SELECT
		   (SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'admin' AND user_id <> $2),
		   (SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'admin' AND user_id = $2)`,
		orgID, userID).Scan(&others, &isAdmin)
	if err != nil {
		return fmt.Errorf("count admins: %w", err)
	}
	if isAdmin > 0 && others == 0 {
		return ci.Errorf(ci.ErrConflict, "last_admin", "an organization needs at least one admin: make someone else an admin first")
	}
	return nil
}

// affected turns "no rows changed" into ci.ErrNotFound.
func affected(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("update %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ci.ErrNotFound)
	}
	return nil
}

func hexHash(b []byte) string { return hex.EncodeToString(b) }

// CreateSession stores a browser session (only the hash of its secret).
func (db *DB) CreateSession(ctx context.Context, s ci.Session) (ci.Session, error) {
	err := db.writer.QueryRowContext(ctx,
		`INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at, last_seen_at)
		 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		hexHash(s.TokenHash), s.UserID, s.CSRFToken, micros(s.CreatedAt), micros(s.ExpiresAt), micros(s.LastSeen)).Scan(&s.ID)
	if err != nil {
		return ci.Session{}, fmt.Errorf("create session: %w", err)
	}
	return s, nil
}

// SessionByHash loads an unexpired session by the hash of its secret.
func (db *DB) SessionByHash(ctx context.Context, hash []byte) (ci.Session, error) {
	var s ci.Session
	var th string
	var c, e, l int64
	err := db.reader.QueryRowContext(ctx,
		`SELECT id, token_hash, user_id, csrf_token, created_at, expires_at, last_seen_at FROM sessions
		 WHERE token_hash = $1 AND expires_at > $2`, hexHash(hash), micros(db.now())).
		Scan(&s.ID, &th, &s.UserID, &s.CSRFToken, &c, &e, &l)
	if err != nil {
		return ci.Session{}, notFound(err, "session")
	}
	s.TokenHash, _ = hex.DecodeString(th)
	s.CreatedAt, s.ExpiresAt, s.LastSeen = fromMicros(c), fromMicros(e), fromMicros(l)
	return s, nil
}

// TouchSession records activity and slides the expiry forward.
func (db *DB) TouchSession(ctx context.Context, id int64, seen, expires time.Time) error {
	_, err := db.writer.ExecContext(ctx, `UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE id = $3`,
		micros(seen), micros(expires), id)
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession removes a session (sign-out).
func (db *DB) DeleteSession(ctx context.Context, hash []byte) error {
	if _, err := db.writer.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = $1`, hexHash(hash)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteUserSessions removes every session of a user.
func (db *DB) DeleteUserSessions(ctx context.Context, userID int64) error {
	if _, err := db.writer.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("delete sessions: %w", err)
	}
	return nil
}

// DeleteExpired removes expired sessions, setup links and invitations; it
// returns how many rows went.
func (db *DB) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, stmt := range []string{
		`DELETE FROM sessions WHERE expires_at <= $1`,
		`DELETE FROM setup_links WHERE expires_at <= $1`,
		deleteExpiredInvitations,
	} {
		res, err := db.writer.ExecContext(ctx, stmt, micros(now))
		if err != nil {
			return total, fmt.Errorf("delete expired rows: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}

// CreateAPIToken stores a personal API token (only its hash and hint).
func (db *DB) CreateAPIToken(ctx context.Context, t ci.APIToken) (ci.APIToken, error) {
	t.CreatedAt = fromMicros(micros(db.now()))
	err := db.writer.QueryRowContext(ctx,
		`INSERT INTO api_tokens (user_id, name, hint, token_hash, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		t.UserID, t.Name, t.Hint, hexHash(t.TokenHash), micros(t.CreatedAt)).Scan(&t.ID)
	if err != nil {
		return ci.APIToken{}, db.q().conflict(err, "API token")
	}
	return t, nil
}

const apiTokenCols = `id, user_id, name, hint, token_hash, created_at, last_used_at, revoked_at`

func scanAPIToken(s interface{ Scan(...any) error }) (ci.APIToken, error) {
	var t ci.APIToken
	var th string
	var c int64
	var lu, rv sql.NullInt64
	err := s.Scan(&t.ID, &t.UserID, &t.Name, &t.Hint, &th, &c, &lu, &rv)
	t.TokenHash, _ = hex.DecodeString(th)
	t.CreatedAt, t.LastUsedAt, t.RevokedAt = fromMicros(c), fromOptMicros(lu), fromOptMicros(rv)
	return t, err
}

// APITokenByHash loads an unrevoked API token by its hash.
func (db *DB) APITokenByHash(ctx context.Context, hash []byte) (ci.APIToken, error) {
	t, err := scanAPIToken(db.reader.QueryRowContext(ctx,
		`SELECT `+apiTokenCols+` FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL`, hexHash(hash)))
	if err != nil {
		return ci.APIToken{}, notFound(err, "API token")
	}
	return t, nil
}

// ListAPITokens lists a user's tokens, newest first, revoked ones included.
func (db *DB) ListAPITokens(ctx context.Context, userID int64) ([]ci.APIToken, error) {
	rows, err := db.reader.QueryContext(ctx,
		`SELECT `+apiTokenCols+` FROM api_tokens WHERE user_id = $1 ORDER BY id DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	defer rows.Close()
	var out []ci.APIToken
	for rows.Next() {
		t, err := scanAPIToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list API tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeAPIToken revokes one of the user's tokens. Another user's token, or
// an already revoked one, is ci.ErrNotFound.
func (db *DB) RevokeAPIToken(ctx context.Context, userID, id int64) (ci.APIToken, error) {
	var t ci.APIToken
	err := db.InTx(ctx, func(tx *Tx) error {
		res, err := tx.w.ExecContext(ctx,
			`UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL`,
			micros(db.now()), id, userID)
		if err := affected(res, err, "API token"); err != nil {
			return err
		}
		t, err = scanAPIToken(tx.w.QueryRowContext(ctx, `SELECT `+apiTokenCols+` FROM api_tokens WHERE id = $1`, id))
		return err
	})
	return t, err
}

// TouchAPIToken records when a token was last used.
func (db *DB) TouchAPIToken(ctx context.Context, id int64, at time.Time) error {
	if _, err := db.writer.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = $1 WHERE id = $2`, micros(at), id); err != nil {
		return fmt.Errorf("touch API token: %w", err)
	}
	return nil
}

// CreateSetupLink stores a first-run setup link (only its hash).
func (db *DB) CreateSetupLink(ctx context.Context, hash []byte, expires time.Time) error {
	_, err := db.writer.ExecContext(ctx, `INSERT INTO setup_links (token_hash, created_at, expires_at) VALUES ($1, $2, $3)`,
		hexHash(hash), micros(db.now()), micros(expires))
	if err != nil {
		return fmt.Errorf("create setup link: %w", err)
	}
	return nil
}

// SetupLinkValid reports whether an unused, unexpired setup link has this hash.
func (db *DB) SetupLinkValid(ctx context.Context, hash []byte) (bool, error) {
	var n int
	err := db.reader.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM setup_links WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2`,
		hexHash(hash), micros(db.now())).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("check setup link: %w", err)
	}
	return n > 0, nil
}

// ConsumeSetupLink marks the setup link used inside tx; a used, expired or
// unknown link is ci.ErrNotFound. Setup also requires that no user exists yet.
func (tx *Tx) ConsumeSetupLink(ctx context.Context, hash []byte) error {
	res, err := tx.w.ExecContext(ctx,
		`UPDATE setup_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1`,
		micros(tx.now()), hexHash(hash))
	if err := affected(res, err, "setup link"); err != nil {
		return err
	}
	var users int
	if err := tx.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&users); err != nil {
		return fmt.Errorf("count users: %w", err)
	}
	if users > 0 {
		return ci.Errorf(ci.ErrConflict, "already_set_up", "kitewatch is already set up: sign in instead")
	}
	return nil
}

// AppendAudit appends an audit event.
func (x q) AppendAudit(ctx context.Context, e ci.AuditEvent) error {
	if e.CreatedAt.IsZero() {
		e.CreatedAt = x.now()
	}
	var details sql.NullString
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return fmt.Errorf("encode audit details: %w", err)
		}
		details = sql.NullString{String: string(b), Valid: true}
	}
	var org, actor sql.NullInt64
	if e.OrgID != nil {
		org = sql.NullInt64{Int64: *e.OrgID, Valid: true}
	}
	if e.ActorID != nil {
		actor = sql.NullInt64{Int64: *e.ActorID, Valid: true}
	}
	_, err := x.w.ExecContext(ctx,
		`INSERT INTO audit_events (org_id, actor_id, actor, action, target, outcome, client_ip, details, created_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		org, actor, e.Actor, e.Action, e.Target, e.Outcome, e.ClientIP, details, micros(e.CreatedAt))
	if err != nil {
		return fmt.Errorf("append audit event %s: %w", e.Action, err)
	}
	return nil
}

// AppendAudit appends an audit event.
func (db *DB) AppendAudit(ctx context.Context, e ci.AuditEvent) error {
	return db.q().AppendAudit(ctx, e)
}

// AuditFilter selects audit events.
type AuditFilter struct {
	OrgID    int64
	BeforeID int64 // events with a smaller id; 0 for the newest
	Limit    int   // 1..500, default 100
	Action   string
}

// ListAudit lists an organization's audit events, newest first.
func (db *DB) ListAudit(ctx context.Context, f AuditFilter) ([]ci.AuditEvent, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	query := `SELECT id, org_id, actor_id, actor, action, target, outcome, client_ip, details, created_at
		FROM audit_events WHERE org_id = $1`
	args := []any{f.OrgID}
	if f.BeforeID > 0 {
		args = append(args, f.BeforeID)
		query += fmt.Sprintf(" AND id < $%d", len(args))
	}
	if f.Action != "" {
		args = append(args, f.Action)
		query += fmt.Sprintf(" AND action = $%d", len(args))
	}
	args = append(args, f.Limit)
	query += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	rows, err := db.reader.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	defer rows.Close()
	var out []ci.AuditEvent
	for rows.Next() {
		var e ci.AuditEvent
		var org, actor sql.NullInt64
		var details sql.NullString
		var created int64
		if err := rows.Scan(&e.ID, &org, &actor, &e.Actor, &e.Action, &e.Target, &e.Outcome, &e.ClientIP, &details, &created); err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
		if org.Valid {
			e.OrgID = &org.Int64
		}
		if actor.Valid {
			e.ActorID = &actor.Int64
		}
		if details.Valid {
			_ = json.Unmarshal([]byte(details.String), &e.Details)
		}
		e.CreatedAt = fromMicros(created)
		out = append(out, e)
	}
	return out, rows.Err()
}
