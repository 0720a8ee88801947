//go:build cgo

package duckdb_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tether-hub/tether/bench/loggen"
	"github.com/tether-hub/tether/internal/connlog/duckdb"
)

func BenchmarkZZMove(b *testing.B) {
	mr, _ := strconv.Atoi(os.Getenv("MOVE"))
	g, _ := loggen.New(loggen.Options{Records: b.N, Devices: 100_000,
		End: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC), Span: 2 * time.Hour})
	recs := g.Next(b.N)
	s, err := duckdb.Open(context.Background(), filepath.Join(b.TempDir(), "logs.duckdb"), duckdb.Options{CompactAfter: -1, MoveRecords: mr, MaxStaged: 4 * mr})
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
	s.Flush(ctx)
	s.DB().ExecContext(ctx, "CHECKPOINT")
	b.StopTimer()
	var bs, used int64
	s.DB().QueryRowContext(ctx, "SELECT block_size, used_blocks FROM pragma_database_size()").Scan(&bs, &used)
	b.ReportMetric(float64(bs*used)/float64(len(recs)), "B/record")
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/1e3/float64(max(len(recs), 1)), "cpu-µs/record")
	fmt.Fprint(os.Stderr)
}
