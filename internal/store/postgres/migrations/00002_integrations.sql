-- +goose Up
CREATE TABLE integrations (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  ext_org_slug TEXT NOT NULL DEFAULT '',
  ext_org_name TEXT NOT NULL DEFAULT '',
  ext_org_id TEXT NOT NULL DEFAULT '',
  token_sealed BYTEA,
  token_kek_id TEXT NOT NULL DEFAULT '',
  generation BIGINT NOT NULL DEFAULT 0,
  facts TEXT,
  problems TEXT,
  last_checked_at BIGINT,
  last_check_ok BOOLEAN NOT NULL DEFAULT FALSE,
  ever_verified BOOLEAN NOT NULL DEFAULT FALSE,
  connected_by BIGINT,
  connected_at BIGINT,
  updated_at BIGINT NOT NULL,
  UNIQUE (org_id, kind)
);
CREATE INDEX integrations_kek ON integrations(token_kek_id);
CREATE TABLE integration_checks (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  integration_id BIGINT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
  reason TEXT NOT NULL,
  ok BOOLEAN NOT NULL,
  codes TEXT NOT NULL,
  problems TEXT,
  checked_at BIGINT NOT NULL
);
CREATE INDEX integration_checks_integration ON integration_checks(integration_id, id);
CREATE TABLE settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- +goose Down
DROP TABLE settings;
DROP TABLE integration_checks;
DROP TABLE integrations;
