package connlog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/sqlite"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
)

// BenchmarkWriter measures the log ingest path end to end, journal →
// Writer → SQLite, in records per second and CPU per record. Each
// iteration opens a fresh embedded journal and store, so run it with
// -benchtime=Nx (e.g. 3x).
//
//	backlog: stormEvents events are in the journal before the Writer
//	         starts; the clock runs until it has stored and acked them all
//	         (full batches: the Writer's best case).
//	paced:   the Writer runs while events arrive at pacedRate per second,
//	         as in a connect storm (batches of what came within MaxWait).
//	         CPU counts publishing too; publish-only is the same load
//	         without a Writer, to subtract.
//
// cpu-ns/record is the process's user+system CPU (the embedded NATS
// server included: acks cost it work) over the measured phase, divided by
// the records stored; allocs/record likewise counts every goroutine.
func BenchmarkWriter(b *testing.B) {
	b.Run("backlog", func(b *testing.B) { benchWriter(b, stormEvents, 0, true) })
	b.Run("paced", func(b *testing.B) { benchWriter(b, pacedEvents, pacedRate, true) })
	b.Run("publish-only", func(b *testing.B) { benchWriter(b, pacedEvents, pacedRate, false) })
}

const (
	stormEvents  = 50_000
	pacedEvents  = 20_000
	pacedRate    = 5_000 // events/s: about a 2-core hub's TLS connect+disconnect rate
	stormDevices = 10_000
)

// stormEvent is the i-th event of a connect storm over stormDevices
// devices, in scattered order: each connects, then disconnects (client
// DISCONNECT), then connects again…; one record each.
func stormEvent(t0 time.Time, i int) presence.ConnectionEvent {
	dev := fmt.Sprintf("storm-%05d", i*7919%stormDevices)
	cycle := i / stormDevices
	s := fmt.Sprintf("%064X", cycle+1)
	e := presence.ConnectionEvent{
		ID: dev + "/" + s, Time: t0.Add(time.Duration(i) * 200 * time.Microsecond), Hub: "myhub.azure-devices.net",
		DeviceID: dev, Sequence: s, Protocol: "MQTT", ProtocolVersion: 4, MaskedIP: "10.1.2.XXX",
		SDKVersion: sdk, AuthType: "sas", SessionID: fmt.Sprintf("s-%d", i), KeepAliveSeconds: 60,
		TokenExpiry: t0.Add(time.Hour),
	}
	if cycle%2 == 0 {
		e.Kind = presence.Connected
	} else {
		e.Kind, e.Reason, e.DurationMs = presence.Disconnected, presence.ReasonClient, 1234
	}
	return e
}

func publishStorm(b *testing.B, js jetstream.JetStream, t0 time.Time, from, to int) {
	for i := from; i < to; i++ {
		e := stormEvent(t0, i)
		data, err := json.Marshal(e)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := js.PublishAsync(journal.ConnSubject(e.DeviceID, string(e.Kind)), data, jetstream.WithMsgID(e.ID)); err != nil {
			b.Fatal(err)
		}
	}
}

func waitPublished(b *testing.B, js jetstream.JetStream) {
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		b.Fatal("publishing did not complete")
	}
}

type usage struct {
	cpu     time.Duration
	mallocs uint64
	bytes   uint64
	at      time.Time
}

func measure() usage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return usage{
		cpu:     time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		mallocs: ms.Mallocs, bytes: ms.TotalAlloc, at: time.Now(),
	}
}

func benchWriter(b *testing.B, events, rate int, withWriter bool) {
	var cpu, wall time.Duration
	var mallocs, bytes uint64
	total := 0
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		j, err := journal.Open(ctx, journal.Options{DataDir: filepath.Join(dir, "journal")})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		store, err := sqlite.Open(context.Background(), filepath.Join(dir, "logs.db"))
		if err != nil {
			b.Fatal(err)
		}
		w, err := connlog.NewWriter(connlog.WriterOptions{JS: j.JS, Store: store, Resource: res, Retention: -1})
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now().UTC().Add(-time.Hour)
		if rate == 0 {
			publishStorm(b, j.JS, t0, 0, events)
			waitPublished(b, j.JS)
		}
		runtime.GC()
		b.StartTimer()
		start := measure()
		if withWriter {
			if err := w.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		if rate > 0 {
			// Bursts every 10 ms keep the rate without a timer per event.
			const tick = 10 * time.Millisecond
			per := rate * int(tick) / int(time.Second)
			tk := time.NewTicker(tick)
			for i := 0; i < events; i += per {
				<-tk.C
				publishStorm(b, j.JS, t0, i, min(i+per, events))
			}
			tk.Stop()
			waitPublished(b, j.JS)
		}
		if withWriter {
			deadline := time.Now().Add(5 * time.Minute)
			for w.Processed() < uint64(events) {
				if time.Now().After(deadline) {
					b.Fatalf("writer stored %d of %d events", w.Processed(), events)
				}
				time.Sleep(time.Millisecond)
			}
		}
		end := measure()
		b.StopTimer()
		cpu += end.cpu - start.cpu
		wall += end.at.Sub(start.at)
		mallocs += end.mallocs - start.mallocs
		bytes += end.bytes - start.bytes
		total += events
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		if err := w.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		store.Close()
		j.Close()
		b.StartTimer()
	}
	n := float64(total)
	b.ReportMetric(float64(wall.Nanoseconds())/n, "ns/record")
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/record")
	b.ReportMetric(float64(mallocs)/n, "allocs/record")
	b.ReportMetric(float64(bytes)/n, "B/record")
	b.ReportMetric(n/wall.Seconds(), "records/s")
}
