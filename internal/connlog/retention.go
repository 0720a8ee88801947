package connlog

import (
	"context"
	"log/slog"
	"time"
)

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
