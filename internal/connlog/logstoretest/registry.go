package logstoretest

import (
	"time"

	"github.com/tether-hub/tether/internal/registry"
)

func registryChange(id, dev string, at time.Time) registry.Change {
	return registry.Change{
		ID: id, Op: registry.OpUpdated, Time: at, Hub: "bench.example.net", DeviceID: dev,
		Device: registry.Device{DeviceID: dev, GenerationID: "638000000000000000", ETag: "AAAAAAAAAAE=", Status: registry.Enabled},
		Caller: "iothubowner",
	}
}
