package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kitewatch/kitewatch/internal/ci"
)

const integrationCols = `id, org_id, kind, status, ext_org_slug, ext_org_name, ext_org_id, token_sealed, token_kek_id,
	generation, facts, problems, last_checked_at, last_check_ok, ever_verified, connected_by, connected_at, updated_at`

func scanIntegration(s interface{ Scan(...any) error }) (ci.Integration, error) {
	var in ci.Integration
	var facts, problems sql.NullString
	var checked, connectedAt sql.NullInt64
	var connectedBy sql.NullInt64
	var updated int64
	err := s.Scan(&in.ID, &in.OrgID, &in.Kind, &in.Status, &in.ExtOrgSlug, &in.ExtOrgName, &in.ExtOrgID, &in.TokenSealed,
		&in.TokenKEKID, &in.Generation, &facts, &problems, &checked, &in.LastCheckOK, &in.EverVerified, &connectedBy,
		&connectedAt, &updated)
	if facts.Valid {
		in.Facts = json.RawMessage(facts.String)
	}
	if problems.Valid {
		in.Problems = json.RawMessage(problems.String)
	}
	in.LastCheckedAt, in.ConnectedAt = fromOptMicros(checked), fromOptMicros(connectedAt)
	if connectedBy.Valid {
		in.ConnectedBy = &connectedBy.Int64
	}
	in.UpdatedAt = fromMicros(updated)
	return in, err
}

// Integration loads an organization's integration of a kind. A missing one
// is ci.ErrNotFound.
func (x q) Integration(ctx context.Context, orgID int64, kind string) (ci.Integration, error) {
	in, err := scanIntegration(x.r.QueryRowContext(ctx,
		`SELECT `+integrationCols+` FROM integrations WHERE org_id = $1 AND kind = $2`, orgID, kind))
	if err != nil {
		return ci.Integration{}, notFound(err, kind+" integration")
	}
	return in, nil
}

// Integration loads an organization's integration of a kind.
func (db *DB) Integration(ctx context.Context, orgID int64, kind string) (ci.Integration, error) {
	return db.q().Integration(ctx, orgID, kind)
}

// ListIntegrations lists every integration of a kind across organizations
// (for periodic re-checks and polling).
func (db *DB) ListIntegrations(ctx context.Context, kind string) ([]ci.Integration, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT `+integrationCols+` FROM integrations WHERE kind = $1 ORDER BY id`, kind)
	if err != nil {
		return nil, fmt.Errorf("list integrations: %w", err)
	}
	defer rows.Close()
	var out []ci.Integration
	for rows.Next() {
		in, err := scanIntegration(rows)
		if err != nil {
			return nil, fmt.Errorf("list integrations: %w", err)
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

func nullJSON(b json.RawMessage) sql.NullString {
	if len(b) == 0 {
		return sql.NullString{}
	}
	return sql.NullString{String: string(b), Valid: true}
}

func nullInt(p *int64) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: *p, Valid: true}
}

// SaveIntegration inserts or replaces the organization's integration of
// in.Kind, and returns it with its id.
func (x q) SaveIntegration(ctx context.Context, in ci.Integration) (ci.Integration, error) {
	in.UpdatedAt = fromMicros(micros(x.now()))
	err := x.w.QueryRowContext(ctx, `INSERT INTO integrations (org_id, kind, status, ext_org_slug, ext_org_name, ext_org_id,
		token_sealed, token_kek_id, generation, facts, problems, last_checked_at, last_check_ok, ever_verified, connected_by,
		connected_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
		ON CONFLICT (org_id, kind) DO UPDATE SET status = excluded.status, ext_org_slug = excluded.ext_org_slug,
		ext_org_name = excluded.ext_org_name, ext_org_id = excluded.ext_org_id, token_sealed = excluded.token_sealed,
		token_kek_id = excluded.token_kek_id, generation = excluded.generation, facts = excluded.facts,
		problems = excluded.problems, last_checked_at = excluded.last_checked_at, last_check_ok = excluded.last_check_ok,
		ever_verified = excluded.ever_verified, connected_by = excluded.connected_by, connected_at = excluded.connected_at,
		updated_at = excluded.updated_at
		RETURNING id`,
		in.OrgID, in.Kind, in.Status, in.ExtOrgSlug, in.ExtOrgName, in.ExtOrgID, in.TokenSealed, in.TokenKEKID, in.Generation,
		nullJSON(in.Facts), nullJSON(in.Problems), optMicros(in.LastCheckedAt), in.LastCheckOK, in.EverVerified,
		nullInt(in.ConnectedBy), optMicros(in.ConnectedAt), micros(in.UpdatedAt)).Scan(&in.ID)
	if err != nil {
		return ci.Integration{}, fmt.Errorf("save %s integration: %w", in.Kind, err)
	}
	return in, nil
}

// RecordCheck stores a verification result and updates the integration's
// status, problems and facts, but only if the token has not changed since
// the check began (generation matches): a slow re-check must never
// overwrite the result of a newer token. It reports whether it applied.
func (x q) RecordCheck(ctx context.Context, in ci.Integration, c ci.IntegrationCheck) (bool, error) {
	res, err := x.w.ExecContext(ctx, `UPDATE integrations SET status = $1, facts = $2, problems = $3, last_checked_at = $4,
		last_check_ok = $5, ever_verified = $6, ext_org_name = $7, updated_at = $8 WHERE id = $9 AND generation = $10`,
		in.Status, nullJSON(in.Facts), nullJSON(in.Problems), micros(c.CheckedAt), c.OK, in.EverVerified, in.ExtOrgName,
		micros(x.now()), in.ID, in.Generation)
	if err != nil {
		return false, fmt.Errorf("record check: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	_, err = x.w.ExecContext(ctx, `INSERT INTO integration_checks (integration_id, reason, ok, codes, problems, checked_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, in.ID, c.Trigger, c.OK, strings.Join(c.Codes, ","), nullJSON(c.Problems), micros(c.CheckedAt))
	if err != nil {
		return false, fmt.Errorf("record check history: %w", err)
	}
	// Keep the last 50 results per integration.
	_, err = x.w.ExecContext(ctx, `DELETE FROM integration_checks WHERE integration_id = $1 AND id NOT IN
		(SELECT id FROM integration_checks WHERE integration_id = $1 ORDER BY id DESC LIMIT 50)`, in.ID)
	if err != nil {
		return false, fmt.Errorf("trim check history: %w", err)
	}
	return true, nil
}

// AddCheck stores a verification result in the history only.
func (x q) AddCheck(ctx context.Context, integrationID int64, c ci.IntegrationCheck) error {
	_, err := x.w.ExecContext(ctx, `INSERT INTO integration_checks (integration_id, reason, ok, codes, problems, checked_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, integrationID, c.Trigger, c.OK, strings.Join(c.Codes, ","), nullJSON(c.Problems), micros(c.CheckedAt))
	if err != nil {
		return fmt.Errorf("record check history: %w", err)
	}
	return nil
}

// ListChecks returns an integration's most recent verification results.
func (db *DB) ListChecks(ctx context.Context, integrationID int64, limit int) ([]ci.IntegrationCheck, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT id, reason, ok, codes, problems, checked_at FROM integration_checks
		WHERE integration_id = $1 ORDER BY id DESC LIMIT $2`, integrationID, limit)
	if err != nil {
		return nil, fmt.Errorf("list checks: %w", err)
	}
	defer rows.Close()
	var out []ci.IntegrationCheck
	for rows.Next() {
		var c ci.IntegrationCheck
		var codes string
		var problems sql.NullString
		var at int64
		if err := rows.Scan(&c.ID, &c.Trigger, &c.OK, &codes, &problems, &at); err != nil {
			return nil, fmt.Errorf("list checks: %w", err)
		}
		c.Codes = []string{}
		if codes != "" {
			c.Codes = strings.Split(codes, ",")
		}
		if problems.Valid {
			c.Problems = json.RawMessage(problems.String)
		}
		c.CheckedAt = fromMicros(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// IntegrationsToRewrap lists integrations whose token is sealed under a key
// other than primaryKEKID, for key rotation.
func (db *DB) IntegrationsToRewrap(ctx context.Context, primaryKEKID string, limit int) ([]ci.Integration, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT `+integrationCols+` FROM integrations
		WHERE token_sealed IS NOT NULL AND token_kek_id <> $1 ORDER BY id LIMIT $2`, primaryKEKID, limit)
	if err != nil {
		return nil, fmt.Errorf("list integrations to rewrap: %w", err)
	}
	defer rows.Close()
	var out []ci.Integration
	for rows.Next() {
		in, err := scanIntegration(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// ReplaceSealedToken swaps one integration's sealed token for a re-wrapped
// one, only if it still holds the old record (compare-and-swap).
func (db *DB) ReplaceSealedToken(ctx context.Context, id int64, old, rewrapped []byte, kekID string) (bool, error) {
	res, err := db.writer.ExecContext(ctx, `UPDATE integrations SET token_sealed = $1, token_kek_id = $2 WHERE id = $3 AND token_sealed = $4`,
		rewrapped, kekID, id, old)
	if err != nil {
		return false, fmt.Errorf("rewrap integration token: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Setting reads a server setting; a missing one is ci.ErrNotFound.
func (db *DB) Setting(ctx context.Context, key string) (string, error) {
	var v string
	if err := db.reader.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&v); err != nil {
		return "", notFound(err, "setting "+key)
	}
	return v, nil
}

// PutSetting writes a server setting.
func (db *DB) PutSetting(ctx context.Context, key, value string) error {
	_, err := db.writer.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("save setting %s: %w", key, err)
	}
	return nil
}

// SaveIntegration inserts or replaces an integration.
func (db *DB) SaveIntegration(ctx context.Context, in ci.Integration) (ci.Integration, error) {
	return db.q().SaveIntegration(ctx, in)
}

// RecordCheck stores a verification result; see q.RecordCheck.
func (db *DB) RecordCheck(ctx context.Context, in ci.Integration, c ci.IntegrationCheck) (bool, error) {
	return db.q().RecordCheck(ctx, in, c)
}
