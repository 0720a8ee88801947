package feed_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/insight"
	"github.com/tether-hub/tether/internal/insight/feed"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
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

// A feed whose state did not change does not save it again, however long
// it idles; one that applied events saves at SaveEvery.
func TestFeedSavesOnlyAChangedState(t *testing.T) {
	j := openJournal(t)
	clock, advance := fakeClock(time.Now()) // the events below are an hour old
	f, err := feed.New(feed.Options{JS: j.JS, Insight: insight.Options{Hub: "bench.example"}, Path: filepath.Join(t.TempDir(), "state"),
		SaveEvery: time.Minute, TickEvery: 5 * time.Millisecond, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer stop(t, f)
	// tickAfter moves the clock by d and waits for a tick that read it
	// (ticks counts a tick before it reads the clock).
	tickAfter := func(d time.Duration) {
		t.Helper()
		advance(d)
		n := f.Status().Ticks
		deadline := time.Now().Add(10 * time.Second)
		for f.Status().Ticks <= n {
			if time.Now().After(deadline) {
				t.Fatalf("no tick within 10 s: %+v", f.Status())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	idle := func(saves uint64) {
		t.Helper()
		if f.Engine().Waiting() {
			t.Fatal("the engine has timers to run: its ticks change the state")
		}
		for range 25 { // past 10 × SaveEvery, a minute a tick
			tickAfter(time.Minute)
		}
		if n := f.Status().Saves; n != saves {
			t.Fatalf("an unchanged state was saved: %d saves, want %d", n, saves)
		}
	}
	idle(0)
	// Events applied: they are saved, at the latest at the first tick
	// SaveEvery on. The last save was long ago, so a tick that came while
	// the burst was only partly applied saved at once, and the rest is
	// saved at that later tick: one save or two, then none while idle.
	publish(t, j, history(10, 5, time.Now().Add(-time.Hour), 3))
	waitApplied(t, f, 10)
	tickAfter(time.Minute)
	tickAfter(0) // a tick counted after the one above has ended, its save too
	saves := f.Status().Saves
	if saves < 1 || saves > 2 {
		t.Fatalf("%d saves after the events were applied, want 1 or 2", saves)
	}
	idle(saves)
}

// flapEvents are a device's ten network drops and reconnects, two minutes
// apart, from start on.
func flapEvents(start time.Time) []presence.ConnectionEvent {
	now := start
	var out []presence.ConnectionEvent
	tr := presence.NewTracker(presence.Options{Hub: "bench.example", Epoch: presence.Filetime(start), Now: func() time.Time { return now },
		Sink: func(ev presence.ConnectionEvent) { out = append(out, ev) }})
	for i := range 11 {
		s := &presence.Session{ID: fmt.Sprintf("%032x", i+1), DeviceID: "flappy", Protocol: "MQTT", ProtocolVersion: 4,
			MaskedIP: "10.1.1.XXX", SDKVersion: "azure-iot-device/1.18.4 (node v20)", AuthType: "sas", KeepAliveSeconds: 180,
			TokenExpiry: now.Add(time.Hour)}
		tr.Connect(s)
		if i == 10 {
			break
		}
		now = now.Add(2 * time.Minute)
		tr.Disconnect(s, presence.ReasonNetwork, presence.ResultClosedRemotely, "connection closed without MQTT DISCONNECT")
		now = now.Add(time.Second)
	}
	return out
}

// A caught-up feed with nothing to time rests (a wake-up per idleTicks ×
// TickEvery instead of each TickEvery); events wake it, and it ticks while
// the engine has timers: a flapping device turns stable when the clock
// alone says so. Reads (Fresh) move engine time themselves.
func TestFeedTicksOnlyWhileTimed(t *testing.T) {
	j := openJournal(t)
	clock, advance := fakeClock(time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC))
	const tick = 5 * time.Millisecond
	f, err := feed.New(feed.Options{JS: j.JS, Insight: insight.Options{Hub: "bench.example"}, TickEvery: tick, IdleCheck: time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer stop(t, f)
	waitWatching(t, f)
	// 100 TickEvery: at most a few wake-ups (idleTicks × TickEvery is
	// 300 ms here). More time than that only lowers the count.
	n0 := f.Status().Ticks
	time.Sleep(100 * tick)
	if n := f.Status().Ticks - n0; n > 10 {
		t.Fatalf("an idle feed woke %d times in 100 × TickEvery", n)
	}
	advance(time.Minute)
	if got, want := f.Fresh().Now(), clock(); !got.Equal(want) {
		t.Fatalf("Fresh: engine time %v, want the clock's %v", got, want)
	}

	publish(t, j, flapEvents(clock().Add(-30*time.Minute)))
	deadline := time.Now().Add(10 * time.Second)
	for f.Engine().FlappingDevices() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the flapping device was not seen: %+v", f.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Two hours later by the clock, with no event and no read: the run
	// loop's own tick must turn the device stable.
	advance(2 * time.Hour)
	deadline = time.Now().Add(10 * time.Second)
	for f.Engine().FlappingDevices() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the device still flaps two hours later: the feed did not tick (%+v)", f.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeClock is a clock the test moves (advance), safe to read from the
// feed's goroutines.
func fakeClock(start time.Time) (clock func() time.Time, advance func(time.Duration)) {
	var mu sync.Mutex
	now := start
	clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance = func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	return clock, advance
}
