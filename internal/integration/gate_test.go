package integration

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestGateWriterWaitsForReaders(t *testing.T) {
	g := newGate()
	ctx := context.Background()
	if err := g.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	locked := make(chan error, 1)
	go func() { locked <- g.Lock(ctx) }()
	// The writer's place is taken: a new reader waits behind it.
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.writer })
	rctx, cancel := context.WithCancel(ctx)
	readerDone := make(chan error, 1)
	go func() { readerDone <- g.RLock(rctx) }()
	select {
	case err := <-locked:
		t.Fatalf("writer got the gate while a reader held it: %v", err)
	case err := <-readerDone:
		t.Fatalf("a new reader got in ahead of the waiting writer: %v", err)
	default:
	}
	cancel()
	if err := <-readerDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled reader: %v", err)
	}
	g.RUnlock()
	if err := <-locked; err != nil {
		t.Fatalf("writer: %v", err)
	}
	g.Unlock()
	if err := g.RLock(ctx); err != nil {
		t.Fatalf("reader after the writer: %v", err)
	}
	g.RUnlock()
}

// TestGateWriterGivesUp is the case a leaked or stuck reader makes: the
// writer's wait ends with its context and the readers queued behind it get
// through instead of waiting for ever.
func TestGateWriterGivesUp(t *testing.T) {
	g := newGate()
	ctx := context.Background()
	if err := g.RLock(ctx); err != nil { // never released
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	locked := make(chan error, 1)
	go func() { locked <- g.Lock(wctx) }()
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.writer })
	readers := make(chan error, 3)
	for range 3 {
		go func() { readers <- g.RLock(ctx) }()
	}
	cancel()
	if err := <-locked; !errors.Is(err, context.Canceled) {
		t.Fatalf("writer: %v, want context.Canceled", err)
	}
	for range 3 {
		if err := <-readers; err != nil {
			t.Fatalf("reader behind the abandoned writer: %v", err)
		}
	}
	g.mu.Lock()
	n, w := g.readers, g.writer
	g.mu.Unlock()
	if n != 4 || w {
		t.Fatalf("readers %d writer %v, want 4 false", n, w)
	}
}

func TestGateManyReadersAndWriters(t *testing.T) {
	g := newGate()
	ctx := context.Background()
	var mu sync.Mutex
	inside, writers := 0, 0
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if i%5 == 0 {
				if err := g.Lock(ctx); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if inside != 0 || writers != 0 {
					t.Errorf("writer inside with %d readers and %d writers", inside, writers)
				}
				writers++
				mu.Unlock()
				mu.Lock()
				writers--
				mu.Unlock()
				g.Unlock()
				return
			}
			if err := g.RLock(ctx); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			if writers != 0 {
				t.Errorf("reader inside with a writer")
			}
			inside++
			mu.Unlock()
			mu.Lock()
			inside--
			mu.Unlock()
			g.RUnlock()
		})
	}
	wg.Wait()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 5000 {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("condition never held")
}

func TestGateMisuseFailsLoudly(t *testing.T) {
	for name, f := range map[string]func(g *gate){
		"unlock without lock":   func(g *gate) { g.Unlock() },
		"runlock without rlock": func(g *gate) { g.RUnlock() },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f(newGate())
		})
	}
}
