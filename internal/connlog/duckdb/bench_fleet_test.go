//go:build cgo

package duckdb_test

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tether-hub/tether/bench/loggen"
	"github.com/tether-hub/tether/internal/connlog/duckdb"
)

// BenchmarkAppendFleet appends loggen records (100,000 devices, one UTC
// day, what a fleet writes) in the Writer's batches of 1,000 and reports
// the process's CPU a record (cpu-µs/record: Append and DuckDB's threads,
// the background checkpoint included, generation not), the figure to
// compare on a shared machine, where ns/op is wall time.
func BenchmarkAppendFleet(b *testing.B) {
	g, err := loggen.New(loggen.Options{Records: b.N, Devices: 100_000,
		End: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC), Span: 2 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	recs := g.Next(b.N)
	// memory_limit as tether serve's default (openTemp's 128 MiB makes
	// DuckDB evict and reload blocks).
	s, err := duckdb.Open(context.Background(), filepath.Join(b.TempDir(), "logs.duckdb"), duckdb.Options{CompactAfter: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	cpu0 := processCPU()
	b.ResetTimer()
	for i := 0; i < len(recs); i += 1000 {
		if err := s.Append(ctx, recs[i:min(i+1000, len(recs))]); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, "CHECKPOINT"); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/1e3/float64(max(len(recs), 1)), "cpu-µs/record")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
