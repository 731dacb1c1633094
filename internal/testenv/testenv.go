// Package testenv decides whether tests that need an outside service (a
// PostgreSQL server, a Chromium browser) run or skip. When
// KITEWATCH_TEST_REQUIRE_ALL=1 (as in CI) a missing service fails the test
// instead of skipping it, so CI always runs every tier.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// RequireAll reports whether missing services must fail tests.
func RequireAll() bool { return os.Getenv("KITEWATCH_TEST_REQUIRE_ALL") == "1" }

// Missing skips the test with msg, or fails it when RequireAll.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if RequireAll() {
		t.Fatalf("%s (KITEWATCH_TEST_REQUIRE_ALL=1 turns this skip into a failure)", msg)
	}
	t.Skip(msg)
}

// PostgresURL returns a connection URL for a fresh, empty schema on the
// server named by KITEWATCH_TEST_POSTGRES_URL; the schema is dropped when the
// test ends. Without the variable the test skips (or fails under RequireAll).
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("KITEWATCH_TEST_POSTGRES_URL")
	if base == "" {
		Missing(t, "PostgreSQL tests skipped: set KITEWATCH_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run them")
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		Missing(t, "PostgreSQL tests skipped: cannot reach KITEWATCH_TEST_POSTGRES_URL: "+err.Error())
		return ""
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "kwtest_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse KITEWATCH_TEST_POSTGRES_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Chromium returns the path of a Chromium binary, or skips (fails under
// RequireAll) when none is installed. KITEWATCH_CHROMIUM overrides the search.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KITEWATCH_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Missing(t, "browser tests skipped: no Chromium found (apt-get install chromium, or set KITEWATCH_CHROMIUM)")
	return ""
}
