package memstore_test

import (
	"testing"

	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/registry/memstore"
	"github.com/tether-hub/tether/internal/registry/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) registry.Store { return memstore.New() })
}
