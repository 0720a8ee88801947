package feed_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/insight"
	"github.com/tether-hub/tether/internal/insight/feed"
	"github.com/tether-hub/tether/internal/journal"
)

// startIdle starts a feed whose idle fallback is an hour away: whatever
// it applies in a test came through the watch.
func startIdle(t *testing.T, j *journal.Journal) *feed.Feed {
	t.Helper()
	f, err := feed.New(feed.Options{JS: j.JS, Insight: insight.Options{Hub: "bench.example"}, IdleCheck: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return f
}

// waitWatching waits until the feed waits on both streams.
func waitWatching(t *testing.T, f *feed.Feed) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.Status().Watching != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the feed does not wait on both streams: %+v", f.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A caught-up feed does not poll, yet applies every event published while
// it waits, round after round: the watch wakes it.
func TestFeedWakesOnPublishWhileIdle(t *testing.T) {
	j := openJournal(t)
	evs := history(60, 20, time.Now().Add(-time.Hour), 7)
	f := startIdle(t, j)
	defer stop(t, f)
	for round := range 6 {
		waitWatching(t, f)
		publish(t, j, evs[round*10:(round+1)*10])
		deadline := time.Now().Add(5 * time.Second)
		for f.Engine().Applied() < uint64((round+1)*10) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: applied %d of %d within 5 s: %+v", round, f.Engine().Applied(), (round+1)*10, f.Status())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// Stop does not wait for an idle feed's fallback pull.
func TestFeedStopsPromptlyWhileIdle(t *testing.T) {
	j := openJournal(t)
	f := startIdle(t, j)
	waitWatching(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.Stop(ctx); err != nil {
		t.Fatalf("Stop of an idle feed: %v (it waited for the idle fallback)", err)
	}
}

// A feed with nothing new saves its state every 10 × SaveEvery, not every
// SaveEvery; one that applied events saves at SaveEvery.
func TestFeedSavesLessWhenIdle(t *testing.T) {
	j := openJournal(t)
	var mu sync.Mutex
	now := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	f, err := feed.New(feed.Options{JS: j.JS, Insight: insight.Options{Hub: "bench.example"}, Path: filepath.Join(t.TempDir(), "state"),
		SaveEvery: time.Minute, TickEvery: 5 * time.Millisecond, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer stop(t, f)
	waitSaves := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for f.Status().Saves != n {
			if time.Now().After(deadline) {
				t.Fatalf("%d saves, want %d", f.Status().Saves, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Idle: nine minutes pass a minute at a time without a save (ticks
	// run meanwhile: the feed sees each step of the clock).
	for range 9 {
		advance(time.Minute)
		time.Sleep(30 * time.Millisecond)
	}
	if n := f.Status().Saves; n != 0 {
		t.Fatalf("an idle feed saved %d times within 9 × SaveEvery", n)
	}
	// (Two minutes: the loop may have read the clock for its first save
	// time after the first step.)
	advance(2 * time.Minute)
	waitSaves(1)
	// Events applied: the next save comes after SaveEvery.
	publish(t, j, history(10, 5, time.Now().Add(-time.Hour), 3))
	waitApplied(t, f, 10)
	advance(time.Minute)
	waitSaves(2)
}
