-- +goose Up
CREATE TABLE analyses (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  build_id BIGINT NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
  attempt BIGINT NOT NULL,
  status TEXT NOT NULL,
  started_at BIGINT NOT NULL,
  finished_at BIGINT,
  error TEXT NOT NULL DEFAULT '',
  skipped TEXT NOT NULL DEFAULT '[]',
  jobs TEXT NOT NULL DEFAULT '[]',
  updated_at BIGINT NOT NULL,
  UNIQUE (build_id, attempt)
);
CREATE INDEX analyses_org ON analyses(org_id, id);
CREATE TABLE findings (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  analysis_id BIGINT NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,
  org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  build_id BIGINT NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
  position BIGINT NOT NULL,
  category TEXT NOT NULL,
  title TEXT NOT NULL,
  section TEXT NOT NULL DEFAULT '',
  excerpt TEXT NOT NULL DEFAULT '[]',
  locations TEXT NOT NULL DEFAULT '[]',
  tests TEXT NOT NULL DEFAULT '[]',
  fingerprint TEXT NOT NULL,
  confidence DOUBLE PRECISION NOT NULL DEFAULT 0,
  first_line BIGINT NOT NULL DEFAULT 0,
  last_line BIGINT NOT NULL DEFAULT 0,
  job_ids TEXT NOT NULL DEFAULT '[]',
  job_count BIGINT NOT NULL DEFAULT 0,
  also_failing_on_default_branch BOOLEAN NOT NULL DEFAULT FALSE,
  flaky BOOLEAN NOT NULL DEFAULT FALSE,
  source TEXT NOT NULL DEFAULT 'log'
);
CREATE INDEX findings_analysis ON findings(analysis_id, position);
CREATE INDEX findings_fingerprint ON findings(org_id, fingerprint);

-- +goose Down
DROP TABLE findings;
DROP TABLE analyses;
