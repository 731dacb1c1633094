// Package postgres opens kitewatch's scale-out database: PostgreSQL through
// pgx's database/sql driver, so that the shared queries and River's
// database/sql driver work unchanged and several replicas can share it.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"

	"github.com/kitewatch/kitewatch/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

type dialect struct{}

func (dialect) Name() string { return "postgres" }

func (dialect) IsUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func (dialect) Migrations() (goose.Dialect, fs.FS) {
	sub, _ := fs.Sub(migrations, "migrations")
	return goose.DialectPostgres, sub
}

func (dialect) RiverDriver(db *sql.DB) riverdriver.Driver[*sql.Tx] { return riverdatabasesql.New(db) }

// Open connects to the PostgreSQL database at url (postgres://...).
func Open(ctx context.Context, url string, opts store.Options) (*store.DB, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("open postgres database: %w", err)
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(5)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres: %w", safeErr(err))
	}
	return store.New(dialect{}, db, db, opts), nil
}

// safeErr drops connection details that could include a password from
// connection errors, keeping the cause.
func safeErr(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w", ce.Unwrap())
	}
	return err
}
