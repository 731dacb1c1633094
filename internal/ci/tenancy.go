package ci

import "time"

// Role is a user's role within one organization.
type Role string

// Roles. Admins may change members, tokens of the organization and integrations.
const (
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleMember }

// Org is a kitewatch organization: the tenant every other object belongs to.
type Org struct {
	ID        int64     `json:"id"`
	Slug      string    `json:"slug"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// User is a person who can sign in. PasswordHash is never serialised.
type User struct {
	ID           int64     `json:"id"`
	Email        string    `json:"email"`
	Name         string    `json:"name"`
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
}

// Membership ties a user to an organization with a role.
type Membership struct {
	OrgID     int64     `json:"org_id"`
	UserID    int64     `json:"user_id"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// Member is a membership joined with its user, for listings.
type Member struct {
	User      User      `json:"user"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"joined_at"`
}

// OrgRole is an organization together with the caller's role in it.
type OrgRole struct {
	Org  Org  `json:"organization"`
	Role Role `json:"role"`
}

// Session is a browser session. Only the hash of its secret is stored.
type Session struct {
	ID        int64
	TokenHash []byte
	UserID    int64
	CSRFToken string
	CreatedAt time.Time
	ExpiresAt time.Time
	LastSeen  time.Time
}

// APIToken is a personal API token for the JSON API and CLI. The secret itself
// (prefix "kw_") is shown once at creation; only its hash is stored.
type APIToken struct {
	ID         int64      `json:"id"`
	UserID     int64      `json:"-"`
	Name       string     `json:"name"`
	Hint       string     `json:"hint"`
	TokenHash  []byte     `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// SetupLink is the one-time link that creates the first admin and organization.
type SetupLink struct {
	TokenHash []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// AuditEvent is one append-only record of a security-relevant action. It must
// never contain a secret.
type AuditEvent struct {
	ID        int64             `json:"id"`
	OrgID     *int64            `json:"-"`
	ActorID   *int64            `json:"actor_id"`
	Actor     string            `json:"actor"`
	Action    string            `json:"action"`
	Target    string            `json:"target"`
	Outcome   string            `json:"outcome"`
	ClientIP  string            `json:"client_ip"`
	Details   map[string]string `json:"details,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
}

// Audit outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)
