-- +goose Up
CREATE TABLE pipelines (
  id INTEGER PRIMARY KEY,
  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  slug TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  ext_id TEXT NOT NULL DEFAULT '',
  repository TEXT NOT NULL DEFAULT '',
  repo_key TEXT NOT NULL DEFAULT '',
  provider TEXT NOT NULL DEFAULT '',
  default_branch TEXT NOT NULL DEFAULT '',
  publish_commit_status BOOLEAN,
  build_pull_requests BOOLEAN,
  web_url TEXT NOT NULL DEFAULT '',
  updated_at INTEGER NOT NULL,
  UNIQUE (org_id, slug)
);
CREATE TABLE builds (
  id INTEGER PRIMARY KEY,
  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  pipeline TEXT NOT NULL,
  number INTEGER NOT NULL,
  ext_id TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL,
  blocked BOOLEAN NOT NULL DEFAULT FALSE,
  branch TEXT NOT NULL DEFAULT '',
  commit_sha TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '',
  tag TEXT NOT NULL DEFAULT '',
  trigger_source TEXT NOT NULL DEFAULT '',
  pr_number INTEGER NOT NULL DEFAULT 0,
  pr_base TEXT NOT NULL DEFAULT '',
  pr_repository TEXT NOT NULL DEFAULT '',
  author_name TEXT NOT NULL DEFAULT '',
  author_email TEXT NOT NULL DEFAULT '',
  creator_name TEXT NOT NULL DEFAULT '',
  creator_email TEXT NOT NULL DEFAULT '',
  repo_key TEXT NOT NULL DEFAULT '',
  provider TEXT NOT NULL DEFAULT '',
  web_url TEXT NOT NULL DEFAULT '',
  rebuilt_from INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER,
  scheduled_at INTEGER,
  started_at INTEGER,
  finished_at INTEGER,
  superseded BOOLEAN NOT NULL DEFAULT FALSE,
  attempt INTEGER NOT NULL DEFAULT 0,
  jobs_synced_at INTEGER,
  last_source TEXT NOT NULL DEFAULT '',
  first_seen_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (org_id, pipeline, number)
);
CREATE INDEX builds_org_id ON builds(org_id, id);
CREATE INDEX builds_branch ON builds(org_id, pipeline, branch, number);
CREATE INDEX builds_pr ON builds(org_id, pipeline, pr_number, number);
CREATE INDEX builds_commit ON builds(org_id, commit_sha);
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY,
  build_id INTEGER NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
  ext_id TEXT NOT NULL,
  type TEXT NOT NULL DEFAULT '',
  name TEXT NOT NULL DEFAULT '',
  step_key TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT '',
  exit_status INTEGER,
  soft_failed BOOLEAN NOT NULL DEFAULT FALSE,
  retried BOOLEAN NOT NULL DEFAULT FALSE,
  retried_by TEXT NOT NULL DEFAULT '',
  retry_of TEXT NOT NULL DEFAULT '',
  retry_type TEXT NOT NULL DEFAULT '',
  parallel_index INTEGER,
  parallel_total INTEGER,
  web_url TEXT NOT NULL DEFAULT '',
  started_at INTEGER,
  finished_at INTEGER,
  updated_at INTEGER NOT NULL,
  UNIQUE (build_id, ext_id)
);
CREATE TABLE webhook_endpoints (
  org_id INTEGER PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
  endpoint_id TEXT NOT NULL UNIQUE,
  secret_sealed BLOB NOT NULL,
  secret_kek_id TEXT NOT NULL DEFAULT '',
  mode TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  rotated_at INTEGER NOT NULL,
  last_delivery_at INTEGER
);
CREATE TABLE webhook_deliveries (
  id INTEGER PRIMARY KEY,
  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  request_id TEXT,
  body_hash BLOB NOT NULL,
  event TEXT NOT NULL,
  body BLOB NOT NULL,
  received_at INTEGER NOT NULL,
  processed_at INTEGER,
  UNIQUE (org_id, request_id),
  UNIQUE (org_id, body_hash)
);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries(org_id, received_at);
CREATE TABLE poll_state (
  org_id INTEGER PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
  state TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE poll_state;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
DROP TABLE jobs;
DROP TABLE builds;
DROP TABLE pipelines;
