package auth

import (
	"strings"
	"sync"
	"time"
)

// LimiterConfig tunes sign-in throttling. Zero fields take the defaults shown
// by DefaultLimiterConfig.
type LimiterConfig struct {
	// AccountThreshold is how many failures for one account within Window
	// are tolerated before it is locked.
	AccountThreshold int
	// IPThreshold is the same for one client IP. It is higher because an
	// office or NAT puts many honest users behind one address.
	IPThreshold int
	// Window is how long failures are remembered after the last one.
	Window time.Duration
	// BaseLockout is the first lockout; each further failure doubles it.
	BaseLockout time.Duration
	// MaxLockout caps the lockout.
	MaxLockout time.Duration
	// MaxKeys caps the number of tracked IPs plus accounts; the least
	// recently failed are forgotten first.
	MaxKeys int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// DefaultLimiterConfig returns the defaults: lock an account after 5 failures
// and an IP after 20 within 15 minutes, for 1s doubling per further failure up
// to 15 minutes, tracking at most 100 000 keys (about 20 MB, measured by
// BenchmarkLimiterMemory at 195 bytes per key).
func DefaultLimiterConfig() LimiterConfig {
	return LimiterConfig{
		AccountThreshold: 5,
		IPThreshold:      20,
		Window:           15 * time.Minute,
		BaseLockout:      time.Second,
		MaxLockout:       15 * time.Minute,
		MaxKeys:          100_000,
		Now:              time.Now,
	}
}

func (c LimiterConfig) withDefaults() LimiterConfig {
	d := DefaultLimiterConfig()
	if c.AccountThreshold <= 0 {
		c.AccountThreshold = d.AccountThreshold
	}
	if c.IPThreshold <= 0 {
		c.IPThreshold = d.IPThreshold
	}
	if c.Window <= 0 {
		c.Window = d.Window
	}
	if c.BaseLockout <= 0 {
		c.BaseLockout = d.BaseLockout
	}
	if c.MaxLockout <= 0 {
		c.MaxLockout = d.MaxLockout
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = d.MaxKeys
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	return c
}

// Limiter throttles password sign-in per client IP and per account with
// exponential backoff. It is safe for concurrent use.
//
// The intended use for every sign-in attempt:
//
//	if wait := lim.Check(ip, email); wait > 0 { answer 429 with Retry-After }
//	verify the password (DummyCheck for unknown accounts)
//	on failure lim.Failure(ip, email); on success lim.Success(ip, email)
//
// Locking an account lets anyone delay its owner's sign-in by failing on
// purpose; the 15-minute cap bounds that nuisance, and the audit log shows it.
type Limiter struct {
	cfg LimiterConfig

	mu      sync.Mutex
	entries *lru[*failures]
}

// failures is the state of one IP or account.
type failures struct {
	count       int
	last        time.Time
	lockedUntil time.Time
}

// NewLimiter returns a Limiter with cfg, zero fields taking defaults.
func NewLimiter(cfg LimiterConfig) *Limiter {
	cfg = cfg.withDefaults()
	return &Limiter{cfg: cfg, entries: newLRU[*failures](cfg.MaxKeys)}
}

// Keys are namespaced so an account named like an IP cannot collide with it.
func ipKey(ip string) string { return "ip:" + ip }

func accountKey(account string) string {
	return "acct:" + strings.ToLower(strings.TrimSpace(account))
}

// Check returns how long the caller must wait before trying to sign in from ip
// as account; zero means go ahead. Empty ip or account is not tracked.
func (l *Limiter) Check(ip, account string) (retryAfter time.Duration) {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if ip != "" {
		retryAfter = max(retryAfter, l.wait(ipKey(ip), now))
	}
	if account != "" {
		retryAfter = max(retryAfter, l.wait(accountKey(account), now))
	}
	return retryAfter
}

func (l *Limiter) wait(key string, now time.Time) time.Duration {
	f, ok := l.entries.peek(key)
	if !ok || !now.Before(f.lockedUntil) {
		return 0
	}
	return f.lockedUntil.Sub(now)
}

// Failure records a failed sign-in from ip as account.
func (l *Limiter) Failure(ip, account string) {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pruneOldest(now)
	if ip != "" {
		l.fail(ipKey(ip), l.cfg.IPThreshold, now)
	}
	if account != "" {
		l.fail(accountKey(account), l.cfg.AccountThreshold, now)
	}
}

func (l *Limiter) fail(key string, threshold int, now time.Time) {
	f, ok := l.entries.get(key)
	if !ok || now.Sub(f.last) > l.cfg.Window {
		f = &failures{}
	}
	f.count++
	f.last = now
	if f.count >= threshold {
		f.lockedUntil = now.Add(l.lockout(f.count - threshold))
	}
	l.entries.put(key, f)
}

// lockout returns BaseLockout doubled n times, capped at MaxLockout.
func (l *Limiter) lockout(n int) time.Duration {
	d := l.cfg.BaseLockout
	for range n {
		d *= 2
		if d >= l.cfg.MaxLockout || d <= 0 {
			return l.cfg.MaxLockout
		}
	}
	return min(d, l.cfg.MaxLockout)
}

// pruneOldest drops a few entries that have expired, starting with the least
// recently used, so that idle keys do not wait for the cap to be forgotten.
func (l *Limiter) pruneOldest(now time.Time) {
	for range 4 {
		key, f, ok := l.entries.oldest()
		if !ok || now.Sub(f.last) <= l.cfg.Window || now.Before(f.lockedUntil) {
			return
		}
		l.entries.delete(key)
	}
}

// Success records a successful sign-in: the account's failures are
// forgotten. The IP's are kept, so an attacker who owns one account cannot
// sign into it between guesses at others to reset their IP's count.
func (l *Limiter) Success(ip, account string) {
	if account == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries.delete(accountKey(account))
}

// Len returns the number of tracked IPs and accounts.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.entries.len()
}
