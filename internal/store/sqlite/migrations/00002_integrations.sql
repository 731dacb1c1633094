-- +goose Up
CREATE TABLE integrations (
  id INTEGER PRIMARY KEY,
  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  ext_org_slug TEXT NOT NULL DEFAULT '',
  ext_org_name TEXT NOT NULL DEFAULT '',
  ext_org_id TEXT NOT NULL DEFAULT '',
  token_sealed BLOB,
  token_kek_id TEXT NOT NULL DEFAULT '',
  generation INTEGER NOT NULL DEFAULT 0,
  facts TEXT,
  problems TEXT,
  last_checked_at INTEGER,
  last_check_ok BOOLEAN NOT NULL DEFAULT FALSE,
  ever_verified BOOLEAN NOT NULL DEFAULT FALSE,
  connected_by INTEGER,
  connected_at INTEGER,
  updated_at INTEGER NOT NULL,
  UNIQUE (org_id, kind)
);
CREATE INDEX integrations_kek ON integrations(token_kek_id);
CREATE TABLE integration_checks (
  id INTEGER PRIMARY KEY,
  integration_id INTEGER NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
  reason TEXT NOT NULL,
  ok BOOLEAN NOT NULL,
  codes TEXT NOT NULL,
  problems TEXT,
  checked_at INTEGER NOT NULL
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
