package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/logstoretest"
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
