package bk

// Problem codes. They are stable: the UI, the JSON API, the audit log and
// docs/buildkite.md refer to them.
const (
	CodeTokenFormatInvalid   = "token_format_invalid"
	CodeWrongTokenType       = "wrong_token_type"
	CodeTokenInvalid         = "token_invalid"
	CodeTokenExpired         = "token_expired"
	CodeTokenRevoked         = "token_revoked"
	CodeMissingScopes        = "missing_scopes"
	CodeNoOrganizationAccess = "no_organization_access"
	CodeOrganizationRequired = "organization_required"
	CodeIPNotAllowed         = "ip_not_allowed"
	CodeBuildkiteUnreachable = "buildkite_unreachable"
	CodeRateLimited          = "rate_limited"
	CodeExcessScopes         = "excess_scopes"
	CodeTokenExpiringSoon    = "token_expiring_soon"
)

// Problem severities.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Problem is one finding of Verify: a stable Code, a Severity, a plain
// Message saying what is wrong and a Remedy saying what to do. Data holds
// machine-readable details: "missing_scopes", "excess_scopes" ([]string),
// "organizations" ([]string of slugs), "reset_at", "expires_at"
// (time.Time), "reason" (for buildkite_unreachable: dns, connect, tls,
// timeout, server_error, bad_response), "token_kind", "status".
type Problem struct {
	Code     string         `json:"code"`
	Severity string         `json:"severity"`
	Message  string         `json:"message"`
	Remedy   string         `json:"remedy"`
	Data     map[string]any `json:"data,omitempty"`
}

// Remedies, in the words of the troubleshooting checklist.
const (
	remedyValidToken  = "Use a valid token: copy the whole API access token again from Buildkite (Personal Settings → API Access Tokens), without spaces or line breaks."
	remedyAPIToken    = "Use an API access token (it starts with bkua_) and not another token type: create one under Personal Settings → API Access Tokens, ideally on a service account."
	remedyNewToken    = "Use a valid token: create a new API access token with the 9 read scopes in Buildkite (Personal Settings → API Access Tokens) and connect it again."
	remedyNotExpired  = "Use a token that has not expired: create a new API access token with the 9 read scopes and a later expiry, then rotate to it."
	remedyScopes      = "Give the token all 9 scopes: edit the token in Buildkite (Personal Settings → API Access Tokens) and tick the missing ones, or create a new token with all 9."
	remedyOrgAccess   = "Make sure the account has access to the organization: the token's user must be a member of it, and the token must be created with access to it. Check the organization slug, which is case-sensitive."
	remedyChooseOrg   = "Choose the organization: pick one of the organizations the token can reach."
	remedyIP          = "Allow kitewatch's address: an organization admin can add kitewatch's outbound IP address to the API IP allowlist (Organization Settings → API Access), or use a token of an organization without one."
	remedyReachable   = "Make sure Buildkite is reachable from kitewatch: check DNS, firewalls, proxies and TLS interception, and https://www.buildkitestatus.com; then verify again."
	remedyRateLimited = "Wait until the rate limit resets, then verify again. If this keeps happening, other tools share the organization's API budget."
	remedyLeastPriv   = "For least privilege, create a token with only the 9 read scopes and no write scopes or GraphQL access, then rotate to it."
	remedyExpiring    = "Create a new API access token with the 9 read scopes and rotate to it before it expires."
)
