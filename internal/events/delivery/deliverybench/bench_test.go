package deliverybench

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestSmoke runs a short, slow load so the harness stays working.
func TestSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	r, err := Run(ctx, Config{Rate: 200, Duration: 500 * time.Millisecond, Devices: 50})
	if err != nil {
		t.Fatal(err, r)
	}
	t.Log(r)
}

// BenchmarkLatency reports publish → webhook latency at 1,000 and 5,000
// events/s (5 s each; b.N is ignored):
//
//	go test -run '^$' -bench Latency ./internal/events/delivery/deliverybench
func BenchmarkLatency(b *testing.B) {
	for _, rate := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("%d-per-s", rate), func(b *testing.B) {
			r, err := Run(context.Background(), Config{Rate: rate, Duration: 5 * time.Second, Devices: 1000})
			if err != nil {
				b.Fatal(err, r)
			}
			b.ReportMetric(float64(r.P50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(r.P99.Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(r.Max.Microseconds())/1000, "max-ms")
			b.Log(r)
		})
	}
}

// BenchmarkCatchUp reports what delivering a backlog costs: 60,000
// connection events of 5,000 devices journalled while no engine ran,
// then one engine delivers them all (b.N is ignored). CPU per event is
// the whole process's (delivery, receiver, journal server):
//
//	go test -run '^$' -bench CatchUp ./internal/events/delivery/deliverybench
func BenchmarkCatchUp(b *testing.B) {
	r, err := Run(context.Background(), Config{Backlog: 60000, Devices: 5000})
	if err != nil && r.Received == 0 {
		b.Fatal(err, r)
	}
	if err != nil {
		b.Error(err) // not all delivered within 30 s: what was is reported
	}
	b.ReportMetric(float64(r.Received)/r.Elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(r.CPU.Microseconds())/float64(r.Received), "cpu-µs/event")
	b.Log(r)
}
