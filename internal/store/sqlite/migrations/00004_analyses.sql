-- +goose Up
CREATE TABLE analyses (
  id INTEGER PRIMARY KEY,
  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  build_id INTEGER NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL,
  status TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  finished_at INTEGER,
  error TEXT NOT NULL DEFAULT '',
  skipped TEXT NOT NULL DEFAULT '[]',
  jobs TEXT NOT NULL DEFAULT '[]',
  updated_at INTEGER NOT NULL,
  UNIQUE (build_id, attempt)
);
CREATE INDEX analyses_org ON analyses(org_id, id);
CREATE TABLE findings (
  id INTEGER PRIMARY KEY,
  analysis_id INTEGER NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,
  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  build_id INTEGER NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  category TEXT NOT NULL,
  title TEXT NOT NULL,
  section TEXT NOT NULL DEFAULT '',
  excerpt TEXT NOT NULL DEFAULT '[]',
  locations TEXT NOT NULL DEFAULT '[]',
  tests TEXT NOT NULL DEFAULT '[]',
  fingerprint TEXT NOT NULL,
  confidence REAL NOT NULL DEFAULT 0,
  first_line INTEGER NOT NULL DEFAULT 0,
  last_line INTEGER NOT NULL DEFAULT 0,
  job_ids TEXT NOT NULL DEFAULT '[]',
  job_count INTEGER NOT NULL DEFAULT 0,
  also_failing_on_default_branch BOOLEAN NOT NULL DEFAULT FALSE,
  flaky BOOLEAN NOT NULL DEFAULT FALSE,
  source TEXT NOT NULL DEFAULT 'log'
);
CREATE INDEX findings_analysis ON findings(analysis_id, position);
CREATE INDEX findings_fingerprint ON findings(org_id, fingerprint);

-- +goose Down
DROP TABLE findings;
DROP TABLE analyses;
