package integration

import (
	"context"
	"sync"
)

// gate is a per-organization readers-writer lock whose waits end with their
// context. Token users (clients, re-checks) hold it shared; token swaps
// (connect, rotate, disconnect) hold it exclusively, so the old token is
// never sent after a swap. Like sync.RWMutex it prefers the writer: once a
// swap waits, new readers wait behind it. Unlike sync.RWMutex, a writer that
// gives up (its context ends because an in-flight request never finished)
// lets the waiting readers through again instead of freezing every poll
// and analysis of the organization behind it.
type gate struct {
	mu      sync.Mutex
	readers int
	writer  bool          // a writer holds the gate or waits for readers to leave
	changed chan struct{} // closed and replaced whenever the state changes
}

func newGate() *gate { return &gate{changed: make(chan struct{})} }

// broadcast wakes every waiter; g.mu must be held.
func (g *gate) broadcast() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// RLock takes the gate shared, waiting while a writer holds or wants it.
func (g *gate) RLock(ctx context.Context) error {
	for {
		g.mu.Lock()
		if !g.writer {
			g.readers++
			g.mu.Unlock()
			return nil
		}
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// RUnlock releases a shared hold.
func (g *gate) RUnlock() {
	g.mu.Lock()
	g.readers--
	if g.readers < 0 {
		g.mu.Unlock()
		panic("integration: gate released more often than taken")
	}
	g.broadcast()
	g.mu.Unlock()
}

// Lock takes the gate exclusively: first the writer's place (one writer at
// a time), then it waits for the readers to leave. If ctx ends first it
// gives the place back and returns ctx's error.
func (g *gate) Lock(ctx context.Context) error {
	for {
		g.mu.Lock()
		if !g.writer {
			g.writer = true
			g.broadcast()
			break
		}
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
	// g.mu is held here.
	for g.readers > 0 {
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			g.mu.Lock()
			g.writer = false
			g.broadcast()
			g.mu.Unlock()
			return ctx.Err()
		case <-ch:
		}
		g.mu.Lock()
	}
	g.mu.Unlock()
	return nil
}

// Unlock releases an exclusive hold.
func (g *gate) Unlock() {
	g.mu.Lock()
	if !g.writer {
		g.mu.Unlock()
		panic("integration: gate unlocked without a writer")
	}
	g.writer = false
	g.broadcast()
	g.mu.Unlock()
}
