package auth

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manually advanced clock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestLimiterAccountBackoff(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(LimiterConfig{Now: clk.Now})
	const ip, acct = "192.0.2.1", "a@acme.test"
	// Four failures are free; the fifth locks for 1s, then 2s, 4s, ...
	for i := range 4 {
		l.Failure(ip, acct)
		if got := l.Check(ip, acct); got != 0 {
			t.Fatalf("after %d failures Check = %v, want 0", i+1, got)
		}
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i, w := range want {
		l.Failure(ip, acct)
		if got := l.Check(ip, acct); got != w {
			t.Fatalf("after %d failures Check = %v, want %v", 5+i, got, w)
		}
		// The account is locked whichever IP asks, and case does not matter.
		if got := l.Check("198.51.100.7", " A@ACME.test"); got != w {
			t.Fatalf("other IP, same account: Check = %v, want %v", got, w)
		}
	}
	clk.Advance(3 * time.Second)
	if got := l.Check(ip, acct); got != 5*time.Second {
		t.Fatalf("after 3s Check = %v, want 5s", got)
	}
	// The cap.
	for range 30 {
		l.Failure(ip, acct)
	}
	if got := l.Check("", acct); got != 15*time.Minute {
		t.Fatalf("capped lockout = %v, want 15m", got)
	}
	// Success forgets the account.
	l.Success(ip, acct)
	if got := l.Check("", acct); got != 0 {
		t.Fatalf("after Success Check = %v, want 0", got)
	}
}

func TestLimiterWindowExpires(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(LimiterConfig{Now: clk.Now})
	for range 4 {
		l.Failure("", "b@acme.test")
	}
	clk.Advance(16 * time.Minute)
	// The earlier four are forgotten: this is failure one of a new window.
	for range 4 {
		l.Failure("", "b@acme.test")
	}
	if got := l.Check("", "b@acme.test"); got != 0 {
		t.Fatalf("Check = %v, want 0 once old failures left the window", got)
	}
}

func TestLimiterIPThreshold(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(LimiterConfig{Now: clk.Now})
	const ip = "203.0.113.9"
	// Spraying one guess per account: no account lock, but the IP locks at 20.
	for i := range 19 {
		l.Failure(ip, fmt.Sprintf("user%d@acme.test", i))
	}
	if got := l.Check(ip, "new@acme.test"); got != 0 {
		t.Fatalf("after 19 IP failures Check = %v, want 0", got)
	}
	l.Failure(ip, "user19@acme.test")
	if got := l.Check(ip, "new@acme.test"); got != time.Second {
		t.Fatalf("after 20 IP failures Check = %v, want 1s", got)
	}
	if got := l.Check("192.0.2.200", "new@acme.test"); got != 0 {
		t.Fatalf("another IP is throttled: %v", got)
	}
	// Signing into an account of one's own does not reset the IP.
	l.Success(ip, "mine@acme.test")
	if got := l.Check(ip, ""); got != time.Second {
		t.Fatalf("after Success the IP lock is %v, want 1s", got)
	}
}

func TestLimiterEviction(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(LimiterConfig{Now: clk.Now, MaxKeys: 10, AccountThreshold: 1})
	l.Failure("", "first@acme.test")
	if l.Check("", "first@acme.test") == 0 {
		t.Fatal("first account not locked")
	}
	for i := range 20 {
		l.Failure("", fmt.Sprintf("u%d@acme.test", i))
		if n := l.Len(); n > 10 {
			t.Fatalf("Len = %d, want at most 10", n)
		}
	}
	if got := l.Check("", "first@acme.test"); got != 0 {
		t.Errorf("oldest key not evicted: Check = %v", got)
	}
	if got := l.Check("", "u19@acme.test"); got == 0 {
		t.Error("newest key was evicted")
	}
}

func TestLimiterPrunesExpired(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(LimiterConfig{Now: clk.Now})
	for i := range 3 {
		l.Failure("", fmt.Sprintf("u%d@acme.test", i))
	}
	clk.Advance(time.Hour)
	l.Failure("", "late@acme.test")
	if n := l.Len(); n != 1 {
		t.Errorf("Len = %d after the others expired, want 1", n)
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := NewLimiter(LimiterConfig{MaxKeys: 50})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				ip := fmt.Sprintf("10.0.%d.%d", g, i%7)
				acct := fmt.Sprintf("u%d@acme.test", i%13)
				l.Check(ip, acct)
				if i%3 == 0 {
					l.Success(ip, acct)
				} else {
					l.Failure(ip, acct)
				}
			}
		})
	}
	wg.Wait()
	if n := l.Len(); n > 50 {
		t.Fatalf("Len = %d, want at most 50", n)
	}
}

func TestRateLimiter(t *testing.T) {
	clk := newFakeClock()
	r := NewRateLimiter(RateLimiterConfig{Interval: time.Second, Burst: 3, Now: clk.Now})
	for i := range 3 {
		if ok, _ := r.Allow("org:acme"); !ok {
			t.Fatalf("request %d of burst denied", i+1)
		}
	}
	ok, wait := r.Allow("org:acme")
	if ok || wait != time.Second {
		t.Fatalf("4th request: Allow = %v, %v; want false, 1s", ok, wait)
	}
	if ok, _ := r.Allow("org:other"); !ok {
		t.Fatal("another key is limited")
	}
	clk.Advance(400 * time.Millisecond)
	if ok, wait := r.Allow("org:acme"); ok || wait != 600*time.Millisecond {
		t.Fatalf("after 400ms: Allow = %v, %v; want false, 600ms", ok, wait)
	}
	clk.Advance(600 * time.Millisecond)
	if ok, _ := r.Allow("org:acme"); !ok {
		t.Fatal("after the interval the request is still denied")
	}
	if ok, _ := r.Allow("org:acme"); ok {
		t.Fatal("bucket refilled more than one request in one interval")
	}
	// A long pause refills to Burst, not beyond.
	clk.Advance(time.Hour)
	for i := range 3 {
		if ok, _ := r.Allow("org:acme"); !ok {
			t.Fatalf("refilled request %d denied", i+1)
		}
	}
	if ok, _ := r.Allow("org:acme"); ok {
		t.Fatal("bucket holds more than Burst")
	}
}

func TestRateLimiterEvictionAndConcurrency(t *testing.T) {
	r := NewRateLimiter(RateLimiterConfig{Interval: time.Minute, Burst: 1, MaxKeys: 16})
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Go(func() {
			for i := range 200 {
				key := "fixed"
				if i%2 == 1 {
					key = fmt.Sprintf("k%d", i)
				}
				ok, _ := r.Allow(key)
				if ok && key == "fixed" {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if n := r.Len(); n > 16 {
		t.Fatalf("Len = %d, want at most 16", n)
	}
	// "fixed" is used constantly so it stays recently used and is never
	// evicted: exactly one request in the minute.
	if allowed != 1 {
		t.Fatalf("key %q was allowed %d times, want 1", "fixed", allowed)
	}
}

func BenchmarkLimiterFailure(b *testing.B) {
	l := NewLimiter(LimiterConfig{})
	i := 0
	for b.Loop() {
		l.Failure(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), fmt.Sprintf("u%d@acme.test", i))
		i++
	}
}

// BenchmarkLimiterMemory reports the heap held per tracked key when the
// Limiter is full (100 000 keys), the figure quoted in DefaultLimiterConfig.
func BenchmarkLimiterMemory(b *testing.B) {
	const keys = 100_000
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		l := NewLimiter(LimiterConfig{MaxKeys: keys})
		for i := range keys / 2 {
			l.Failure(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), fmt.Sprintf("user%d@example.com", i))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/keys, "B/key")
		runtime.KeepAlive(l)
	}
}
