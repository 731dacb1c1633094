-- +goose Up
-- The builds list is newest first by creation time (see store.ListBuilds).
CREATE INDEX builds_org_newest ON builds(org_id, (COALESCE(created_at, first_seen_at)) DESC, number DESC, id DESC);

-- +goose Down
DROP INDEX builds_org_newest;
