-- +goose Up
-- Invitations to join an organization (see store/invitations.go). Only the
-- hash of the one-time link's secret is stored. One invitation per email
-- and organization: inviting again replaces the old one, whose link dies.
CREATE TABLE invitations (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  email TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
  token_hash TEXT NOT NULL UNIQUE,
  invited_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  accepted_at BIGINT,
  accepted_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
  UNIQUE (org_id, email)
);
CREATE INDEX invitations_expires ON invitations(expires_at);

-- +goose Down
DROP TABLE invitations;
