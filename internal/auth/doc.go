// Package auth holds kitewatch's authentication primitives: password hashing,
// random tokens and their hashes, sign-in throttling, generic rate limiting and
// session cookie attributes. It touches no database; the store and the web
// layer wire these pieces to users, sessions and API tokens.
//
// # Passwords
//
// Passwords are hashed with argon2id and stored in the PHC string format
// ($argon2id$v=19$m=19456,t=2,p=1$salt$hash). The parameters are OWASP's
// recommended minimum (19 MiB, two passes, one lane) rather than RFC 9106's
// 64 MiB profile: kitewatch targets small two-core servers, and memory is what
// a flood of sign-in attempts exhausts first. With one lane each hash occupies
// one core, so two concurrent sign-ins saturate a two-core machine, and at most
// one derivation per core (at least two) runs at once so a burst cannot
// allocate unbounded memory: 38 MiB on a two-core server. Measured with
// BenchmarkHashPassword, BenchmarkCheckPassword and BenchmarkDummyCheck on a
// two-core AMD EPYC-class VM: 27 to 40 ms and 19 MiB per hash or check, with
// DummyCheck within the run-to-run noise of CheckPassword; so roughly 60
// sign-ins per second saturate such a server, which the Limiter keeps far
// out of an attacker's reach. NeedsRehash reports stored hashes whose parameters differ
// from the current ones so that a successful sign-in can upgrade them.
//
// Sign-in for an unknown account must call DummyCheck so that it costs one
// argon2id derivation exactly like a known account; otherwise response times
// reveal which email addresses have accounts.
//
// # Tokens
//
// Every secret kitewatch hands out (API tokens, session secrets, setup links,
// webhook secrets) is "<prefix>_<52 lowercase base32 characters>" carrying 256
// random bits. Only HashToken's SHA-256 digest is stored: the tokens have full
// entropy, so a slow hash adds nothing. The prefix makes leaked tokens easy to
// recognise for secret scanners and for kitewatch's own redaction.
//
// # Throttling
//
// Limiter slows down password guessing per client IP and per account with
// exponential lockouts; RateLimiter is a keyed token bucket for everything
// else. Both keep a bounded number of keys in memory and evict the least
// recently used; they are per process, so replicas throttle independently.
package auth
