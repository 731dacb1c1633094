-- +goose Up
CREATE TABLE pipelines (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
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
  updated_at BIGINT NOT NULL,
  UNIQUE (org_id, slug)
);
CREATE TABLE builds (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  pipeline TEXT NOT NULL,
  number BIGINT NOT NULL,
  ext_id TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL,
  blocked BOOLEAN NOT NULL DEFAULT FALSE,
  branch TEXT NOT NULL DEFAULT '',
  commit_sha TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '',
  tag TEXT NOT NULL DEFAULT '',
  trigger_source TEXT NOT NULL DEFAULT '',
  pr_number BIGINT NOT NULL DEFAULT 0,
  pr_base TEXT NOT NULL DEFAULT '',
  pr_repository TEXT NOT NULL DEFAULT '',
  author_name TEXT NOT NULL DEFAULT '',
  author_email TEXT NOT NULL DEFAULT '',
  creator_name TEXT NOT NULL DEFAULT '',
  creator_email TEXT NOT NULL DEFAULT '',
  repo_key TEXT NOT NULL DEFAULT '',
  provider TEXT NOT NULL DEFAULT '',
  web_url TEXT NOT NULL DEFAULT '',
  rebuilt_from BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT,
  scheduled_at BIGINT,
  started_at BIGINT,
  finished_at BIGINT,
  superseded BOOLEAN NOT NULL DEFAULT FALSE,
  attempt BIGINT NOT NULL DEFAULT 0,
  jobs_synced_at BIGINT,
  last_source TEXT NOT NULL DEFAULT '',
  first_seen_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  UNIQUE (org_id, pipeline, number)
);
CREATE INDEX builds_org_id ON builds(org_id, id);
CREATE INDEX builds_branch ON builds(org_id, pipeline, branch, number);
CREATE INDEX builds_pr ON builds(org_id, pipeline, pr_number, number);
CREATE INDEX builds_commit ON builds(org_id, commit_sha);
CREATE TABLE jobs (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  build_id BIGINT NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
  ext_id TEXT NOT NULL,
  type TEXT NOT NULL DEFAULT '',
  name TEXT NOT NULL DEFAULT '',
  step_key TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT '',
  exit_status BIGINT,
  soft_failed BOOLEAN NOT NULL DEFAULT FALSE,
  retried BOOLEAN NOT NULL DEFAULT FALSE,
  retried_by TEXT NOT NULL DEFAULT '',
  retry_of TEXT NOT NULL DEFAULT '',
  retry_type TEXT NOT NULL DEFAULT '',
  parallel_index BIGINT,
  parallel_total BIGINT,
  web_url TEXT NOT NULL DEFAULT '',
  started_at BIGINT,
  finished_at BIGINT,
  updated_at BIGINT NOT NULL,
  UNIQUE (build_id, ext_id)
);
CREATE TABLE webhook_endpoints (
  org_id BIGINT PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
  endpoint_id TEXT NOT NULL UNIQUE,
  secret_sealed BYTEA NOT NULL,
  secret_kek_id TEXT NOT NULL DEFAULT '',
  mode TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  rotated_at BIGINT NOT NULL,
  last_delivery_at BIGINT
);
CREATE TABLE webhook_deliveries (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  request_id TEXT,
  body_hash BYTEA NOT NULL,
  event TEXT NOT NULL,
  body BYTEA NOT NULL,
  received_at BIGINT NOT NULL,
  processed_at BIGINT,
  UNIQUE (org_id, request_id),
  UNIQUE (org_id, body_hash)
);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries(org_id, received_at);
CREATE TABLE poll_state (
  org_id BIGINT PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
  state TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE poll_state;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
DROP TABLE jobs;
DROP TABLE builds;
DROP TABLE pipelines;
