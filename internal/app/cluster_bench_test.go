package app_test

import (
	"github.com/tether-hub/tether/internal/app"
	"sort"
	"syscall"
	"testing"
	"time"
)

// BenchmarkTakeover measures a takeover's CONNACK latency (from the new
// CONNECT's dial to its CONNACK, the old session ended and recorded
// first) and the hub processes' CPU per takeover: on one hub (local
// takeover) and across the nodes of a 3-node cluster in this process
// (the device alternates nodes, so every takeover is cross-node). CPU is
// getrusage of the whole test process (hubs and clients), per takeover.
//
//	go test -run '^$' -bench Takeover -benchtime 200x ./internal/app/
func BenchmarkTakeover(b *testing.B) {
	b.Run("single", func(b *testing.B) {
		h := startHubWith(b, b.TempDir(), func(c *app.Config) { c.NoThrottle = true })
		benchTakeovers(b, []*hub{h}, []*hub{h})
	})
	b.Run("cluster-cross-node", func(b *testing.B) {
		hubs := startCluster(b)
		benchTakeovers(b, hubs, hubs)
	})
}

func benchTakeovers(b *testing.B, hubs, all []*hub) {
	const id = "bench-dev"
	key := hubs[0].device(id)
	waitDevice(b, all, id)
	lat := make([]time.Duration, 0, b.N)
	// One connection to start with; then each iteration connects on the
	// next node, taking the device over.
	hubs[0].v3(id, username(id), hubs[0].token(id, key, time.Hour))
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		h := hubs[(i+1)%len(hubs)]
		start := time.Now()
		_, rc := h.v3(id, username(id), h.token(id, key, time.Hour))
		if rc != 0 {
			b.Fatalf("connect %d: %d", i, rc)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/takeover")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
