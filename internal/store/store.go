// Package store is kitewatch's storage contract: one implementation over
// database/sql whose dialect-specific parts (opening, migrations, error
// classification, write transactions) are supplied by the sqlite and postgres
// packages. Both must pass the conformance suite in storetest.
//
// Timestamps are stored as Unix microseconds (BIGINT) and secrets only as
// hashes or sealed ciphertext, so the same queries run on both databases.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// Dialect names what differs between the databases. Everything else is
// shared SQL with $N placeholders, which both SQLite and PostgreSQL accept.
type Dialect interface {
	// Name is "sqlite" or "postgres".
	Name() string
	// IsUniqueViolation reports whether err is a unique-constraint violation.
	IsUniqueViolation(err error) bool
	// Migrations returns the goose dialect and the embedded migration files.
	Migrations() (goose.Dialect, fs.FS)
	// RiverDriver returns the River driver for the writer pool.
	RiverDriver(db *sql.DB) riverdriver.Driver[*sql.Tx]
}

// DB is a kitewatch database. Writes go through Writer (one connection on
// SQLite, where every transaction begins IMMEDIATE); reads use Reader.
type DB struct {
	dialect Dialect
	writer  *sql.DB
	reader  *sql.DB
	now     func() time.Time
	closers []func() error
}

// Options configures New.
type Options struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Closers run on Close, after the pools are closed.
	Closers []func() error
}

// New wraps open pools. writer and reader may be the same pool.
func New(d Dialect, writer, reader *sql.DB, opts Options) *DB {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &DB{dialect: d, writer: writer, reader: reader, now: now, closers: opts.Closers}
}

// Dialect returns the database dialect.
func (db *DB) Dialect() Dialect { return db.dialect }

// Writer returns the pool used for writes and for River.
func (db *DB) Writer() *sql.DB { return db.writer }

// Now returns the store's clock reading.
func (db *DB) Now() time.Time { return db.now() }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.writer.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s database: %w", db.dialect.Name(), err)
	}
	if db.reader != db.writer {
		if err := db.reader.PingContext(ctx); err != nil {
			return fmt.Errorf("ping %s read pool: %w", db.dialect.Name(), err)
		}
	}
	return nil
}

// Close closes the pools.
func (db *DB) Close() error {
	var errs []error
	if db.reader != db.writer {
		errs = append(errs, db.reader.Close())
	}
	errs = append(errs, db.writer.Close())
	for _, c := range db.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// querier is what both *sql.DB and *sql.Tx provide.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Tx is a write transaction. It offers the same write methods as DB, and
// SQL() for enqueueing background tasks in the same transaction.
type Tx struct {
	q
	tx *sql.Tx
}

// SQL returns the underlying transaction, for transactional task enqueueing.
func (tx *Tx) SQL() *sql.Tx { return tx.tx }

// q carries the query methods shared by DB reads, DB writes and Tx.
type q struct {
	r   querier // reads
	w   querier // writes
	d   Dialect
	now func() time.Time
}

func (db *DB) q() q { return q{r: db.reader, w: db.writer, d: db.dialect, now: db.now} }

// InTx runs fn in one write transaction, committing when fn returns nil.
func (db *DB) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	sqlTx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	tx := &Tx{q: q{r: sqlTx, w: sqlTx, d: db.dialect, now: db.now}, tx: sqlTx}
	if err := fn(tx); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// micros converts a time to the stored form.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros converts the stored form to a UTC time.
func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// optMicros converts an optional time to the stored form.
func optMicros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// fromOptMicros converts the stored form of an optional time.
func fromOptMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// notFound maps sql.ErrNoRows to ci.ErrNotFound with what was looked up.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ci.ErrNotFound)
	}
	return fmt.Errorf("load %s: %w", what, err)
}

// conflict maps unique violations to ci.ErrConflict.
func (x q) conflict(err error, what string) error {
	if err == nil {
		return nil
	}
	if x.d.IsUniqueViolation(err) {
		return &ci.Error{Kind: ci.ErrConflict, Code: "already_exists", Message: what + " already exists"}
	}
	return fmt.Errorf("save %s: %w", what, err)
}
