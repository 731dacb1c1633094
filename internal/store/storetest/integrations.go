package storetest

import (
	"testing"

	"github.com/kitewatch/kitewatch/internal/store"
)

// testIntegrations grows with the integration storage (issue 4).
func testIntegrations(t *testing.T, db *store.DB, c *clock) {}
