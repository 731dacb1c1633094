package ci

import "time"

// Invitation invites an email address to join an organization with a role.
// The secret of its one-time link (prefix "kwinv_") is shown once, to the
// admin who creates it; only its hash is stored.
type Invitation struct {
	ID        int64  `json:"id"`
	OrgID     int64  `json:"-"`
	Email     string `json:"email"`
	Role      Role   `json:"role"`
	TokenHash []byte `json:"-"`
	InvitedBy *int64 `json:"invited_by"`
	// InviterEmail is the inviting admin's email, for listings; empty when
	// that account was deleted.
	InviterEmail string     `json:"invited_by_email"`
	CreatedAt    time.Time  `json:"created_at"`
	ExpiresAt    time.Time  `json:"expires_at"`
	AcceptedAt   *time.Time `json:"accepted_at,omitempty"`
}
