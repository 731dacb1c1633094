package bk

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Scope is an API access token scope kitewatch needs, with what it is used
// for (shown in the UI and by `kitewatch buildkite check`).
type Scope struct {
	Name    string `json:"name"`
	Purpose string `json:"purpose"`
}

// RequiredScopes are the 9 read scopes a kitewatch token needs, in the order
// the Buildkite token page lists them.
var RequiredScopes = []Scope{
	{"read_teams", "map pipelines to the teams that own them"},
	{"read_artifacts", "read test reports and other artifacts of failed jobs"},
	{"read_builds", "list builds and jobs and find the failed ones"},
	{"read_job_env", "read job environments (branch, commit, agent) for context"},
	{"read_build_logs", "download the logs of failed jobs to explain them"},
	{"read_organizations", "find the Buildkite organization the token belongs to"},
	{"read_pipelines", "list pipelines to watch"},
	{"read_user", "show who owns the token"},
	{"read_suites", "read Test Engine runs and failed tests"},
}

// RequiredScopeNames returns the names of RequiredScopes in order.
func RequiredScopeNames() []string {
	names := make([]string, len(RequiredScopes))
	for i, s := range RequiredScopes {
		names[i] = s.Name
	}
	return names
}

// TokenKind describes a kind of Buildkite token recognised by its prefix.
type TokenKind struct {
	Prefix string `json:"prefix"`
	Name   string `json:"name"`
}

// APITokenPrefix is the prefix of Buildkite API access tokens, the kind
// kitewatch needs. Tokens created before March 2023 have no prefix.
const APITokenPrefix = "bkua_"

// wrongKinds are token kinds that cannot call the REST API, longest prefix
// first.
var wrongKinds = []TokenKind{
	{"bkpat_", "portal token"},
	{"bkps_", "portal secret"},
	{"bkct_", "agent cluster registration token"},
	{"bkar_", "unclustered agent registration token"},
	{"bkaa_", "agent session token"},
	{"bkaj_", "agent job token"},
	{"bkpt_", "package registry token"},
	{"bktx_", "OAuth token-exchange token"},
}

// WrongTokenKind returns the kind of token when token has the prefix of a
// Buildkite token that is not an API access token.
func WrongTokenKind(token string) (TokenKind, bool) {
	for _, k := range wrongKinds {
		if strings.HasPrefix(token, k.Prefix) {
			return k, true
		}
	}
	return TokenKind{}, false
}

// MaxTokenLength is the longest token Verify accepts. API access tokens are
// about 45 characters; agent job tokens, which are refused anyway, are long
// JWTs, so the bound is generous.
const MaxTokenLength = 4096

// tokenFormatProblem returns why token cannot be a token at all, or "".
func tokenFormatProblem(token string) string {
	switch {
	case token == "":
		return "The token is empty."
	case len(token) > MaxTokenLength:
		return "The token is too long to be a Buildkite token."
	case !utf8.ValidString(token):
		return "The token contains bytes that are not text."
	}
	for _, r := range token {
		switch {
		case unicode.IsSpace(r):
			return "The token contains spaces or line breaks; it was probably copied with extra text."
		case unicode.IsControl(r) || r == '\u200b' || r == '\ufeff':
			return "The token contains invisible control characters."
		case r > unicode.MaxASCII:
			return "The token contains characters that never appear in Buildkite tokens."
		}
	}
	return ""
}
