package connlog

import (
	"context"
	"log/slog"
	"time"
)

// Partitioned is implemented by a store that keeps records in partitions
// of a fixed time span (the DuckDB store: a table per UTC day). Retention
// then rounds its cutoff down to a partition boundary, so it drops whole
// partitions instead of deleting rows: records are kept up to one span
// longer than asked.
type Partitioned interface {
	PartitionSpan() time.Duration
}

// runRetention deletes records older than keep from store at once and then
// every period, until ctx ends. Failures are logged and retried at the next
// period: retention is housekeeping, never a reason to stop ingest.
func runRetention(ctx context.Context, store Sink, keep, every time.Duration, now func() time.Time, log *slog.Logger) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cutoff := now().Add(-keep)
		if p, ok := store.(Partitioned); ok && p.PartitionSpan() > 0 {
			cutoff = cutoff.UTC().Truncate(p.PartitionSpan())
		}
		n, err := store.DeleteBefore(ctx, cutoff)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("connlog: retention failed", "cutoff", cutoff, "err", err)
		case n > 0:
			log.Info("connlog: retention removed old records", "cutoff", cutoff, "records", n)
		}
		t.Reset(every)
	}
}
