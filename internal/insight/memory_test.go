package insight_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/insight"
	"github.com/tether-hub/tether/internal/presence"
)

// BenchmarkMemoryPerDevice reports the engine's heap per device for
// devices with a full recent-event ring (40 events each) and for devices
// with one session (a connect), the two ends of a fleet.
func BenchmarkMemoryPerDevice(b *testing.B) {
	for _, events := range []int{1, 40} {
		b.Run(fmt.Sprintf("events=%d", events), func(b *testing.B) {
			const devices = 20_000
			var perDevice float64
			for range b.N {
				runtime.GC()
				var m0 runtime.MemStats
				runtime.ReadMemStats(&m0)
				e := insight.NewEngine(insight.Options{Hub: "bench.example"})
				now := time.Now().Add(-time.Hour)
				seq := uint64(0)
				for i := range devices {
					id := fmt.Sprintf("dev-%06d", i)
					for k := range events {
						seq++
						ev := presence.ConnectionEvent{Kind: presence.Connected, Time: now.Add(time.Duration(k) * time.Second), DeviceID: id,
							MaskedIP: "10.1.2.XXX", SDKVersion: "azure-iot-device/1.18.4 (node v20)", Protocol: "MQTT",
							SessionID: fmt.Sprintf("%032x", seq), TokenExpiry: now.Add(time.Hour), KeepAliveSeconds: 180}
						if k%2 == 1 {
							ev.Kind, ev.Reason, ev.Result, ev.DurationMs = presence.Disconnected, presence.ReasonNetwork, presence.ResultClosedRemotely, 1000
						}
						e.Apply(&ev, seq)
					}
				}
				runtime.GC()
				var m1 runtime.MemStats
				runtime.ReadMemStats(&m1)
				perDevice = float64(m1.HeapAlloc-m0.HeapAlloc) / devices
				runtime.KeepAlive(e)
			}
			b.ReportMetric(perDevice, "bytes/device")
		})
	}
}
