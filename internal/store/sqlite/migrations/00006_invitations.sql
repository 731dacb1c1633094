-- +goose Up
-- Invitations to join an organization (see store/invitations.go). Only the
-- hash of the one-time link's secret is stored. One invitation per email
-- and organization: inviting again replaces the old one, whose link dies.
-- AUTOINCREMENT: ids are never reused, so a revoke aimed at an old
-- invitation cannot hit its replacement.
CREATE TABLE invitations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  email TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
  token_hash TEXT NOT NULL UNIQUE,
  invited_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  accepted_at INTEGER,
  accepted_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
  UNIQUE (org_id, email)
);
CREATE INDEX invitations_expires ON invitations(expires_at);

-- +goose Down
DROP TABLE invitations;
