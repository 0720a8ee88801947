package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/logstoretest"
	"github.com/tether-hub/tether/internal/connlog/sqlite"
	"github.com/tether-hub/tether/internal/presence"
)

// BenchmarkAppend measures batched ingest into a file database with every
// index present, as the Writer does it: one Append (one transaction) per
// batch. It reports records/s.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := openTemp(b)
			defer s.Close()
			ctx := context.Background()
			// Records are made ahead, outside the timer.
			const pool = 200
			batches := make([][]connlog.Record, pool)
			for i := range batches {
				batches[i] = logstoretest.Records(batch, logstoretest.T0.Add(time.Duration(i)*24*time.Hour))
			}
			b.ResetTimer()
			n := 0
			for i := 0; b.Loop(); i++ {
				if i > 0 && i%pool == 0 {
					b.StopTimer()
					for j := range batches {
						batches[j] = logstoretest.Records(batch, logstoretest.T0.Add(time.Duration(i+j)*24*time.Hour))
					}
					b.StartTimer()
				}
				if err := s.Append(ctx, batches[i%pool]); err != nil {
					b.Fatal(err)
				}
				n += batch
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkAppendPageSize compares page sizes of a new database side by
// side: batches of 5000 storm records, appended until the database holds
// 200,000 (fresh databases per size, so both start equal).
func BenchmarkAppendPageSize(b *testing.B) {
	for _, size := range []int{4096, 16384} {
		b.Run(fmt.Sprintf("page=%d", size), func(b *testing.B) {
			restore := sqlite.SetPageSize(size)
			defer restore()
			const batch, limit = 5000, 200_000
			pool := make([][]connlog.Record, limit/batch)
			for i := range pool {
				pool[i] = stormRecords(batch, logstoretest.T0, i*batch)
			}
			ctx := context.Background()
			var s *sqlite.Store
			n := 0
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if i%len(pool) == 0 {
					b.StopTimer()
					if s != nil {
						s.Close()
					}
					s = openTemp(b)
					b.StartTimer()
				}
				if err := s.Append(ctx, pool[i%len(pool)]); err != nil {
					b.Fatal(err)
				}
				n += batch
			}
			s.Close()
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// stormRecords makes n Connections records of a connect storm starting
// at t0 with event number from: 10,000 devices connecting and
// disconnecting in turn, in scattered order (as unrelated devices do),
// 5,000 events a second, built by the real mapper.
func stormRecords(n int, t0 time.Time, from int) []connlog.Record {
	res := connlog.Resource{Location: "westeurope"}
	out := make([]connlog.Record, 0, n)
	for i := from; len(out) < n; i++ {
		dev := fmt.Sprintf("storm-%05d", i*7919%10_000)
		s := fmt.Sprintf("%064X", i/10_000+1)
		e := presence.ConnectionEvent{
			ID: dev + "/" + s, Time: t0.Add(time.Duration(i) * 200 * time.Microsecond), Hub: "bench.example.net",
			DeviceID: dev, Sequence: s, Protocol: "MQTT", ProtocolVersion: 4, MaskedIP: "10.1.2.XXX",
			SDKVersion: "azure-iot-device/1.18.3 (node v20.11.0; Linux; x64)", AuthType: "sas",
			SessionID: fmt.Sprintf("s-%d", i), KeepAliveSeconds: 60, TokenExpiry: t0.Add(time.Hour),
		}
		if (i/10_000)%2 == 0 {
			e.Kind = presence.Connected
		} else {
			e.Kind, e.Reason, e.DurationMs = presence.Disconnected, presence.ReasonClient, 1234
		}
		recs, err := connlog.FromConnectionEvent(res, e)
		if err != nil {
			panic(err)
		}
		out = append(out, recs...)
	}
	return out
}

// BenchmarkAppendStorm appends storm records in batches to a database
// that already holds prefill of them (the steady state of a busy hub:
// indexes larger than the page cache), and reports records/s and the
// allocations per record.
func BenchmarkAppendStorm(b *testing.B) {
	const prefill = 200_000
	for _, batch := range []int{200, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := openTemp(b)
			defer s.Close()
			ctx := context.Background()
			t0 := logstoretest.T0
			for i := 0; i < prefill; i += 1000 {
				if err := s.Append(ctx, stormRecords(1000, t0, i)); err != nil {
					b.Fatal(err)
				}
			}
			next := prefill
			const pool = 100
			batches := make([][]connlog.Record, pool)
			fill := func() {
				for j := range batches {
					batches[j] = stormRecords(batch, t0, next)
					next += batch
				}
			}
			fill()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, io0 := cpuTime(), ioBytes()
			n := 0
			for i := 0; b.Loop(); i++ {
				if i > 0 && i%pool == 0 {
					b.StopTimer()
					c, o := cpuTime(), ioBytes()
					fill()
					cpu0 += cpuTime() - c // refills do not count
					io0 += ioBytes() - o
					b.StartTimer()
				}
				if err := s.Append(ctx, batches[i%pool]); err != nil {
					b.Fatal(err)
				}
				n += batch
			}
			cpu, io := cpuTime()-cpu0, ioBytes()-io0
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/record")
			b.ReportMetric(float64(io)/float64(n), "io-B/record")
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ioBytes is how many bytes the process has read and written through
// system calls (Linux /proc/self/io rchar+wchar; 0 elsewhere): SQLite's
// page traffic, a deterministic measure of index locality.
func ioBytes() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	var total int64
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if ok && (k == "rchar" || k == "wchar") {
			n, _ := strconv.ParseInt(v, 10, 64)
			total += n
		}
	}
	return total
}
