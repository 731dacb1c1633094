package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kitewatch/kitewatch/internal/ci"
)

const endpointCols = `org_id, endpoint_id, secret_sealed, secret_kek_id, mode, created_at, rotated_at, last_delivery_at`

func scanEndpoint(s scanner) (ci.WebhookEndpoint, error) {
	var e ci.WebhookEndpoint
	var created, rotated int64
	var last sql.NullInt64
	err := s.Scan(&e.OrgID, &e.EndpointID, &e.SecretSealed, &e.SecretKEKID, &e.Mode, &created, &rotated, &last)
	e.CreatedAt, e.RotatedAt, e.LastDeliveryAt = fromMicros(created), fromMicros(rotated), fromOptMicros(last)
	return e, err
}

// WebhookEndpoint loads an organization's webhook endpoint.
func (x q) WebhookEndpoint(ctx context.Context, orgID int64) (ci.WebhookEndpoint, error) {
	e, err := scanEndpoint(x.r.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE org_id = $1`, orgID))
	if err != nil {
		return ci.WebhookEndpoint{}, notFound(err, "webhook endpoint")
	}
	return e, nil
}

// WebhookEndpointByID loads a webhook endpoint by its public id.
func (x q) WebhookEndpointByID(ctx context.Context, endpointID string) (ci.WebhookEndpoint, error) {
	e, err := scanEndpoint(x.r.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE endpoint_id = $1`, endpointID))
	if err != nil {
		return ci.WebhookEndpoint{}, notFound(err, "webhook endpoint")
	}
	return e, nil
}

// SaveWebhookEndpoint creates or replaces an organization's endpoint (a
// rotation replaces id and secret, keeping created_at).
func (x q) SaveWebhookEndpoint(ctx context.Context, e ci.WebhookEndpoint) error {
	_, err := x.w.ExecContext(ctx, `INSERT INTO webhook_endpoints (org_id, endpoint_id, secret_sealed, secret_kek_id, mode,
		created_at, rotated_at, last_delivery_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (org_id) DO UPDATE SET endpoint_id = excluded.endpoint_id, secret_sealed = excluded.secret_sealed,
		secret_kek_id = excluded.secret_kek_id, mode = excluded.mode, rotated_at = excluded.rotated_at`,
		e.OrgID, e.EndpointID, e.SecretSealed, e.SecretKEKID, e.Mode, micros(e.CreatedAt), micros(e.RotatedAt),
		optMicros(e.LastDeliveryAt))
	return x.conflict(err, "webhook endpoint")
}

// DeleteWebhookEndpoint removes an organization's endpoint.
func (x q) DeleteWebhookEndpoint(ctx context.Context, orgID int64) error {
	if _, err := x.w.ExecContext(ctx, `DELETE FROM webhook_endpoints WHERE org_id = $1`, orgID); err != nil {
		return fmt.Errorf("delete webhook endpoint: %w", err)
	}
	return nil
}

// InsertDelivery stores an accepted webhook delivery unless one with the
// same request id or the same body hash exists for the organization. It
// returns the new id and true, or 0 and false for a duplicate.
func (x q) InsertDelivery(ctx context.Context, d ci.WebhookDelivery, bodyHash []byte) (int64, bool, error) {
	var reqID sql.NullString
	if d.RequestID != "" {
		reqID = sql.NullString{String: d.RequestID, Valid: true}
	}
	var id int64
	err := x.w.QueryRowContext(ctx, `INSERT INTO webhook_deliveries (org_id, request_id, body_hash, event, body, received_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id`,
		d.OrgID, reqID, bodyHash, d.Event, d.Body, micros(d.ReceivedAt)).Scan(&id)
	if errNoRows(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("store webhook delivery: %w", err)
	}
	if err := x.TouchWebhookEndpoint(ctx, d.OrgID, d.ReceivedAt); err != nil {
		return 0, false, err
	}
	return id, true, nil
}

// InsertDeliveries stores a batch of deliveries like InsertDelivery, and
// records the latest receipt time once per organization. ids[i] is the new
// id of ds[i], or 0 when it is a duplicate (of a stored delivery or of an
// earlier one in the batch).
func (x q) InsertDeliveries(ctx context.Context, ds []ci.WebhookDelivery, bodyHashes [][]byte) ([]int64, error) {
	ids := make([]int64, len(ds))
	latest := map[int64]time.Time{}
	for i, d := range ds {
		var reqID sql.NullString
		if d.RequestID != "" {
			reqID = sql.NullString{String: d.RequestID, Valid: true}
		}
		err := x.w.QueryRowContext(ctx, `INSERT INTO webhook_deliveries (org_id, request_id, body_hash, event, body, received_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id`,
			d.OrgID, reqID, bodyHashes[i], d.Event, d.Body, micros(d.ReceivedAt)).Scan(&ids[i])
		if errNoRows(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store webhook delivery: %w", err)
		}
		if d.ReceivedAt.After(latest[d.OrgID]) {
			latest[d.OrgID] = d.ReceivedAt
		}
	}
	for org, at := range latest {
		if err := x.TouchWebhookEndpoint(ctx, org, at); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// TouchWebhookEndpoint records when the organization's endpoint last
// received a delivery.
func (x q) TouchWebhookEndpoint(ctx context.Context, orgID int64, at time.Time) error {
	if _, err := x.w.ExecContext(ctx, `UPDATE webhook_endpoints SET last_delivery_at = $1 WHERE org_id = $2`,
		micros(at), orgID); err != nil {
		return fmt.Errorf("record webhook delivery time: %w", err)
	}
	return nil
}

// Delivery loads a stored delivery by id.
func (x q) Delivery(ctx context.Context, id int64) (ci.WebhookDelivery, error) {
	var d ci.WebhookDelivery
	var reqID sql.NullString
	var received int64
	var processed sql.NullInt64
	err := x.w.QueryRowContext(ctx, `SELECT id, org_id, request_id, event, body, received_at, processed_at
		FROM webhook_deliveries WHERE id = $1`, id).Scan(&d.ID, &d.OrgID, &reqID, &d.Event, &d.Body, &received, &processed)
	if err != nil {
		return ci.WebhookDelivery{}, notFound(err, "webhook delivery")
	}
	d.RequestID, d.ReceivedAt, d.ProcessedAt = reqID.String, fromMicros(received), fromOptMicros(processed)
	return d, nil
}

// MarkDeliveryProcessed marks a delivery processed, once: it reports false
// when it already was.
func (x q) MarkDeliveryProcessed(ctx context.Context, id int64) (bool, error) {
	res, err := x.w.ExecContext(ctx, `UPDATE webhook_deliveries SET processed_at = $1 WHERE id = $2 AND processed_at IS NULL`,
		micros(x.now()), id)
	if err != nil {
		return false, fmt.Errorf("mark webhook delivery processed: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// UnprocessedDeliveries returns the ids of up to limit deliveries, oldest
// first, that were received before before and are not processed yet.
func (x q) UnprocessedDeliveries(ctx context.Context, before time.Time, limit int) ([]int64, error) {
	rows, err := x.r.QueryContext(ctx, `SELECT id FROM webhook_deliveries WHERE processed_at IS NULL AND received_at < $1
		ORDER BY id LIMIT $2`, micros(before), limit)
	if err != nil {
		return nil, fmt.Errorf("list unprocessed webhook deliveries: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list unprocessed webhook deliveries: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list unprocessed webhook deliveries: %w", err)
	}
	return ids, nil
}

// DeliveryStats summarises an organization's deliveries since a time.
type DeliveryStats struct {
	Received    int        `json:"received"`
	Processed   int        `json:"processed"`
	LastAt      *time.Time `json:"last_received_at"`
	Unprocessed int        `json:"unprocessed"`
}

// DeliveryStats counts deliveries received since since.
func (x q) DeliveryStats(ctx context.Context, orgID int64, since time.Time) (DeliveryStats, error) {
	var s DeliveryStats
	var last sql.NullInt64
	err := x.r.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(processed_at), MAX(received_at) FROM webhook_deliveries
		WHERE org_id = $1 AND received_at >= $2`, orgID, micros(since)).Scan(&s.Received, &s.Processed, &last)
	if err != nil {
		return DeliveryStats{}, fmt.Errorf("count webhook deliveries: %w", err)
	}
	s.LastAt, s.Unprocessed = fromOptMicros(last), s.Received-s.Processed
	return s, nil
}

// PollState loads the poller's state for an organization; a fresh state
// when none was saved yet.
func (x q) PollState(ctx context.Context, orgID int64) (ci.PollState, error) {
	var raw string
	err := x.r.QueryRowContext(ctx, `SELECT state FROM poll_state WHERE org_id = $1`, orgID).Scan(&raw)
	if errNoRows(err) {
		return ci.PollState{OrgID: orgID}, nil
	}
	if err != nil {
		return ci.PollState{}, fmt.Errorf("load poll state: %w", err)
	}
	var st ci.PollState
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return ci.PollState{}, fmt.Errorf("decode poll state: %w", err)
	}
	st.OrgID = orgID
	return st, nil
}

// SavePollState stores the poller's state for an organization.
func (x q) SavePollState(ctx context.Context, st ci.PollState) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode poll state: %w", err)
	}
	_, err = x.w.ExecContext(ctx, `INSERT INTO poll_state (org_id, state, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (org_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
		st.OrgID, string(raw), micros(x.now()))
	if err != nil {
		return fmt.Errorf("save poll state: %w", err)
	}
	return nil
}

// WebhookEndpoint loads an organization's webhook endpoint.
func (db *DB) WebhookEndpoint(ctx context.Context, orgID int64) (ci.WebhookEndpoint, error) {
	return db.q().WebhookEndpoint(ctx, orgID)
}

// WebhookEndpointByID loads a webhook endpoint by public id.
func (db *DB) WebhookEndpointByID(ctx context.Context, endpointID string) (ci.WebhookEndpoint, error) {
	return db.q().WebhookEndpointByID(ctx, endpointID)
}

// SaveWebhookEndpoint creates or replaces an endpoint.
func (db *DB) SaveWebhookEndpoint(ctx context.Context, e ci.WebhookEndpoint) error {
	return db.q().SaveWebhookEndpoint(ctx, e)
}

// DeliveryStats counts deliveries since a time.
func (db *DB) DeliveryStats(ctx context.Context, orgID int64, since time.Time) (DeliveryStats, error) {
	return db.q().DeliveryStats(ctx, orgID, since)
}

// Delivery loads a stored delivery.
func (db *DB) Delivery(ctx context.Context, id int64) (ci.WebhookDelivery, error) {
	return db.q().Delivery(ctx, id)
}

// UnprocessedDeliveries lists unprocessed deliveries received before a time.
func (db *DB) UnprocessedDeliveries(ctx context.Context, before time.Time, limit int) ([]int64, error) {
	return db.q().UnprocessedDeliveries(ctx, before, limit)
}

// PollState loads the poller's state.
func (db *DB) PollState(ctx context.Context, orgID int64) (ci.PollState, error) {
	return db.q().PollState(ctx, orgID)
}

// SavePollState stores the poller's state.
func (db *DB) SavePollState(ctx context.Context, st ci.PollState) error {
	return db.q().SavePollState(ctx, st)
}
