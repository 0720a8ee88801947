package memstore_test

import (
	"testing"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/events/memstore"
	"github.com/tether-hub/tether/internal/events/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) events.SubscriptionStore { return memstore.New() })
}
