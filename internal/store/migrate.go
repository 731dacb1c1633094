package store

import (
	"context"
	"fmt"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/rivermigrate"
)

func (db *DB) provider() (*goose.Provider, error) {
	dialect, fsys := db.dialect.Migrations()
	p, err := goose.NewProvider(dialect, db.writer, fsys)
	if err != nil {
		return nil, fmt.Errorf("load %s migrations: %w", db.dialect.Name(), err)
	}
	return p, nil
}

// Migrate applies every pending migration: kitewatch's own schema, then the
// task queue's. It is safe to run on every start and from several replicas
// (goose takes a lock on PostgreSQL; SQLite has a single writer).
func (db *DB) Migrate(ctx context.Context) (applied int, err error) {
	p, err := db.provider()
	if err != nil {
		return 0, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return len(res), fmt.Errorf("apply %s migrations: %w", db.dialect.Name(), err)
	}
	m, err := rivermigrate.New(db.dialect.RiverDriver(db.writer), nil)
	if err != nil {
		return len(res), fmt.Errorf("prepare task queue migrations: %w", err)
	}
	rres, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return len(res), fmt.Errorf("apply task queue migrations: %w", err)
	}
	return len(res) + len(rres.Versions), nil
}

// Pending reports whether any migration has not been applied yet.
func (db *DB) Pending(ctx context.Context) (bool, error) {
	p, err := db.provider()
	if err != nil {
		return false, err
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return false, fmt.Errorf("check %s migrations: %w", db.dialect.Name(), err)
	}
	if pending {
		return true, nil
	}
	m, err := rivermigrate.New(db.dialect.RiverDriver(db.writer), nil)
	if err != nil {
		return false, fmt.Errorf("prepare task queue migrations: %w", err)
	}
	v, err := m.Validate(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("check task queue migrations: %w", err)
	}
	return !v.OK, nil
}
