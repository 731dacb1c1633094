package auth

import (
	"sync"
	"time"
)

// RateLimiterConfig tunes a RateLimiter: each key may spend Burst requests at
// once and regains one every Interval.
type RateLimiterConfig struct {
	// Interval is the time to regain one request; must be positive.
	Interval time.Duration
	// Burst is the bucket size; at least 1.
	Burst int
	// MaxKeys caps the number of tracked keys (default 100 000); the least
	// recently used are forgotten first, which hands them a full bucket.
	MaxKeys int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// RateLimiter is a token bucket per string key, for connect attempts per
// organization, API requests per token and the like. It is safe for
// concurrent use.
type RateLimiter struct {
	cfg RateLimiterConfig

	mu      sync.Mutex
	buckets *lru[*bucket]
}

// bucket is kept as a GCRA "theoretical arrival time": the bucket is full
// when tat <= now, and each request pushes tat one Interval later. Integer
// time arithmetic keeps Allow exact where a float token count would drift.
type bucket struct {
	tat time.Time
}

// NewRateLimiter returns a RateLimiter. It panics when Interval is not
// positive, a programming error.
func NewRateLimiter(cfg RateLimiterConfig) *RateLimiter {
	if cfg.Interval <= 0 {
		panic("auth: RateLimiterConfig.Interval must be positive")
	}
	cfg.Burst = max(cfg.Burst, 1)
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 100_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &RateLimiter{cfg: cfg, buckets: newLRU[*bucket](cfg.MaxKeys)}
}

// Allow takes one request from key's bucket. When the bucket is empty it
// returns false and how long until a request will be allowed.
func (r *RateLimiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := r.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b, found := r.buckets.get(key)
	if !found {
		b = &bucket{tat: now}
		r.buckets.put(key, b)
	}
	tat := b.tat
	if tat.Before(now) {
		tat = now
	}
	// Up to Burst requests may be outstanding: allow while tat is less than
	// Burst intervals ahead of now.
	slack := time.Duration(r.cfg.Burst-1) * r.cfg.Interval
	if ahead := tat.Sub(now); ahead > slack {
		return false, ahead - slack
	}
	b.tat = tat.Add(r.cfg.Interval)
	return true, 0
}

// Len returns the number of tracked keys.
func (r *RateLimiter) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buckets.len()
}
