package postgres_test

import (
	"context"
	"testing"

	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/store/postgres"
	"github.com/kitewatch/kitewatch/internal/store/storetest"
	"github.com/kitewatch/kitewatch/internal/testenv"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts store.Options) *store.DB {
		db, err := postgres.Open(context.Background(), testenv.PostgresURL(t), opts)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}
