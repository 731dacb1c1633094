// Package bk is kitewatch's narrow client for the Buildkite REST API, built
// on github.com/buildkite/go-buildkite/v4.
//
// It adds what go-buildkite lacks for a long-running service:
//
//   - a 429 answer becomes a *RateLimitError carrying the reset time at once,
//     instead of go-buildkite's silent retry loop of up to 15 minutes;
//   - every response's RateLimit-* headers are recorded in a budget snapshot
//     (Client.RateLimit);
//   - every call has a deadline, and errors are typed (*APIError,
//     *RateLimitError, *UnreachableError) and never contain the token, which
//     only travels in the Authorization header and only to the API host;
//   - job logs are fetched from paths built here (go-buildkite reads the log
//     URL from a JSON key the API does not send), streamed, and size-capped.
//
// Verify runs the token checklist (valid token, all 9 scopes, not expired,
// access to the organization, Buildkite reachable, an API access token and
// not another kind) in at most 5 API calls and returns a Report with a
// Problem for each failure; see docs/buildkite.md for the problem codes.
package bk
