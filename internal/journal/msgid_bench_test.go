package journal

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/presence"
)

// BenchmarkDedupeWindowHeap: what an embedded journal keeps live per
// stored connection event while the events are within the duplicate
// window — the full event id as Nats-Msg-Id (the form before ConnMsgID)
// against the digest. One op is one event published and stored (5,000
// devices, consecutive counters, as eventlat drives); the metrics are the
// live heap's growth after a GC, per event: bytes and objects, and what
// a full GC then takes.
//
//	go test -run X -bench DedupeWindowHeap -benchtime 100000x ./internal/journal/
func BenchmarkDedupeWindowHeap(b *testing.B) {
	for _, c := range []struct {
		name string
		id   func(string) string
	}{{"event id", func(id string) string { return id }}, {"digest", ConnMsgID}} {
		b.Run(c.name, func(b *testing.B) {
			j := open(b, b.TempDir())
			defer j.Close()
			p := NewPublisher(j.JS, 1<<12, slog.New(slog.DiscardHandler))
			done := make(chan error, 1<<12)
			epoch := presence.Filetime(time.Now())
			live := func() (uint64, uint64) {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				return ms.HeapAlloc, ms.HeapObjects
			}
			bytes0, objs0 := live()
			b.ResetTimer()
			for n := range b.N {
				dev := fmt.Sprintf("sim-%05d", n%5000)
				seq := presence.FormatSequence(epoch, 0, uint64(n/5000+1))
				ev := presence.ConnectionEvent{
					ID: dev + "/" + seq, Kind: presence.Connected, Time: time.Now(), Hub: "bench.azure-devices.net",
					DeviceID: dev, Sequence: seq, Protocol: "MQTT", ProtocolVersion: 4, MaskedIP: "127.0.0.XXX",
					SDKVersion: "azure-iot-device/1.18.4 (node v20.20.2; Debian 12; x64)", AuthType: "sas",
					SessionID: "0123456789abcdef0123456789abcdef", TokenExpiry: time.Now().Add(time.Hour), KeepAliveSeconds: 60,
					Recorded: func(err error) { done <- err },
				}
				m := ConnectionEventMsg(ev)
				m.ID = c.id(ev.ID)
				if err := p.Publish(m); err != nil {
					b.Fatal(err)
				}
				if n >= 1<<11 {
					if err := <-done; err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := p.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			bytes1, objs1 := live()
			// A full collection with the window's ids live: the mark work
			// they add (best of three).
			gc := time.Duration(1 << 62)
			for range 3 {
				start := time.Now()
				runtime.GC()
				gc = min(gc, time.Since(start))
			}
			b.ReportMetric(float64(gc.Microseconds())/1000, "full-GC-ms")
			b.ReportMetric(float64(int64(bytes1)-int64(bytes0))/float64(b.N), "live-B/event")
			b.ReportMetric(float64(int64(objs1)-int64(objs0))/float64(b.N), "live-objs/event")
		})
	}
}
