// Package ci holds kitewatch's domain vocabulary: organizations, users,
// memberships, API tokens, audit events, Buildkite integrations, builds, jobs,
// analyses and findings, and the error kinds every layer shares.
//
// It imports only the standard library so that every other package can speak
// in these words without depending on each other.
package ci
