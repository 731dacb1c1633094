package tasks_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/store/postgres"
	"github.com/kitewatch/kitewatch/internal/store/sqlite"
	"github.com/kitewatch/kitewatch/internal/tasks"
	"github.com/kitewatch/kitewatch/internal/testenv"
)

type echoArgs struct {
	Name string `json:"name"`
}

func (echoArgs) Kind() string { return "test_echo" }

func openers(t *testing.T) map[string]func(t *testing.T) *store.DB {
	return map[string]func(t *testing.T) *store.DB{
		"sqlite": func(t *testing.T) *store.DB {
			db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), sqlite.FileName), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
		"postgres": func(t *testing.T) *store.DB {
			db, err := postgres.Open(context.Background(), testenv.PostgresURL(t), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
	}
}

// TestTransactionalEnqueue checks, on both databases, that a task enqueued
// in a rolled-back transaction never runs, one enqueued in a committed
// transaction runs once, and a unique task enqueued twice runs once.
func TestTransactionalEnqueue(t *testing.T) {
	for name, open := range openers(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := open(t)
			defer db.Close()
			if _, err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			ran := map[string]int{}
			done := make(chan string, 10)
			q := tasks.New(db, slog.New(slog.DiscardHandler))
			tasks.Handle(q, func(ctx context.Context, a echoArgs) error {
				mu.Lock()
				ran[a.Name]++
				mu.Unlock()
				done <- a.Name
				return nil
			})
			if err := q.Init(tasks.Options{PollInterval: 100 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			boom := errors.New("rollback")
			err := db.InTx(ctx, func(tx *store.Tx) error {
				if _, err := q.EnqueueTx(ctx, tx, echoArgs{Name: "rolled-back"}, nil); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatal(err)
			}
			for _, n := range []string{"committed", "unique", "unique"} {
				var inserted bool
				err := db.InTx(ctx, func(tx *store.Tx) error {
					if _, err := tx.CreateOrg(ctx, n+"-"+time.Now().Format("150405.000000000"), "x"); err != nil {
						return err
					}
					var err error
					inserted, err = q.EnqueueTx(ctx, tx, echoArgs{Name: n}, tasks.Unique)
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				_ = inserted
			}
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			if err := q.Start(runCtx); err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			timeout := time.After(30 * time.Second)
			for len(got) < 2 {
				select {
				case n := <-done:
					got[n] = true
				case <-timeout:
					t.Fatalf("tasks did not run: %v", got)
				}
			}
			stopCtx, stopCancel := context.WithTimeout(ctx, 10*time.Second)
			defer stopCancel()
			if err := q.Stop(stopCtx); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if ran["rolled-back"] != 0 || ran["committed"] != 1 || ran["unique"] != 1 {
				t.Fatalf("runs = %v; want rolled-back 0, committed 1, unique 1", ran)
			}
		})
	}
}

func TestCleanupWorkerDeletesExpiredSessions(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), sqlite.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u, _ := db.CreateUser(ctx, "a@acme.test", "", "h")
	past := time.Now().Add(-time.Hour)
	if _, err := db.CreateSession(ctx, ci.Session{TokenHash: []byte{1}, UserID: u.ID, CreatedAt: past, ExpiresAt: past, LastSeen: past}); err != nil {
		t.Fatal(err)
	}
	w := &tasks.CleanupWorker{DB: db}
	if err := w.Work(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var n int
	_ = db.Writer().QueryRow(`SELECT COUNT(*) FROM sessions`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d expired sessions left", n)
	}
}
