package connlog

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// cutoffStore records DeleteBefore calls; the rest of LogStore is unused.
type cutoffStore struct {
	LogStore
	mu      sync.Mutex
	cutoffs []time.Time
}

func (s *cutoffStore) DeleteBefore(_ context.Context, t time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cutoffs = append(s.cutoffs, t)
	return 1, nil
}

func (s *cutoffStore) calls() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.cutoffs...)
}

func TestRetentionRunsAtStartAndHourly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &cutoffStore{}
		ctx, cancel := context.WithCancel(context.Background())
		start := time.Now()
		done := make(chan struct{})
		go func() {
			runRetention(ctx, store, DefaultRetention, DefaultRetentionEvery, time.Now, slog.New(slog.DiscardHandler))
			close(done)
		}()
		synctest.Wait()
		if got := store.calls(); len(got) != 1 || !got[0].Equal(start.Add(-30*24*time.Hour)) {
			t.Fatalf("at start: cutoffs %v, want one at start−30d", got)
		}
		time.Sleep(59 * time.Minute)
		synctest.Wait()
		if n := len(store.calls()); n != 1 {
			t.Fatalf("after 59 min: %d runs, want 1", n)
		}
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		got := store.calls()
		if len(got) != 3 || !got[2].Equal(start.Add(2*time.Hour-30*24*time.Hour)) {
			t.Fatalf("after 2h59m: cutoffs %v, want 3, the last at start+2h−30d", got)
		}
		cancel()
		<-done
	})
}
