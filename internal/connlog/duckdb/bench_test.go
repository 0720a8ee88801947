//go:build cgo

package duckdb_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/logstoretest"
)

// BenchmarkAppend appends batches of the Writer's size (and larger) of
// realistic records in time order: ns/op is per record.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1000, 20000, 130000} {
		b.Run(fmt.Sprint(batch), func(b *testing.B) {
			s := openTemp(b)
			defer s.Close()
			ctx := context.Background()
			t0 := logstoretest.T0
			var recs []connlog.Record
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				b.StopTimer()
				recs = logstoretest.Records(batch, t0)
				t0 = t0.Add(time.Duration(batch) * 1500 * time.Millisecond)
				b.StartTimer()
				if err := s.Append(ctx, recs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
