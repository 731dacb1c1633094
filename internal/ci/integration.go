package ci

import (
	"encoding/json"
	"time"
)

// Integration states.
const (
	StatusNotConnected   = "not_connected"
	StatusConnected      = "connected"
	StatusNeedsAttention = "needs_attention"
	StatusDisconnected   = "disconnected"
)

// Integration is the stored state of one organization's connection to an
// outside system (today: Buildkite). TokenSealed is the envelope-encrypted
// token; it never leaves the integration service.
type Integration struct {
	ID            int64
	OrgID         int64
	Kind          string // "buildkite"
	Status        string
	ExtOrgSlug    string
	ExtOrgName    string
	ExtOrgID      string
	TokenSealed   []byte
	TokenKEKID    string
	Generation    int64           // bumped on every token change
	Facts         json.RawMessage // token facts (no secret), JSON
	Problems      json.RawMessage // last verification problems, JSON array
	LastCheckedAt *time.Time
	LastCheckOK   bool
	EverVerified  bool
	ConnectedBy   *int64
	ConnectedAt   *time.Time
	UpdatedAt     time.Time
}

// IntegrationCheck is one verification result in an integration's history.
type IntegrationCheck struct {
	ID        int64           `json:"id"`
	Trigger   string          `json:"trigger"`
	OK        bool            `json:"ok"`
	Codes     []string        `json:"codes"`
	CheckedAt time.Time       `json:"checked_at"`
	Problems  json.RawMessage `json:"-"`
}
