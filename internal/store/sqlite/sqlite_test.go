package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/store/sqlite"
	"github.com/kitewatch/kitewatch/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts store.Options) *store.DB {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), sqlite.FileName), opts)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}
