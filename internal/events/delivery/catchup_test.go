package delivery

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/presence"
)

// Timeline: the endpoint stops answering while 40 devices send 3 events
// each. The subscription falls behind: its lag grows with the clock, its
// concurrency grows from 4 to MaxInFlightPerSub. When the endpoint answers
// again the backlog goes out in batches of up to maxEventsPerBatch, each
// device's events in order and never two POSTs of a device at once; then
// the lag is 0 and the concurrency back at 4.
func TestCatchUp(t *testing.T) {
	v := newEnv(t, func(o *Options) { o.MaxInFlightPerSub = 16 })
	gate := make(chan struct{})
	var mu sync.Mutex
	open, maxConc, cur := false, 0, 0
	rc := newReceiver(t, v.clock, func(r *http.Request, p post) int {
		mu.Lock()
		cur++
		maxConc = max(maxConc, cur)
		wait := !open
		mu.Unlock()
		if wait {
			<-gate
		}
		mu.Lock()
		cur--
		mu.Unlock()
		return http.StatusOK
	})
	v.start()
	v.sub("behind", rc.URL, func(s *events.Subscription) { s.Destination.Properties.MaxEventsPerBatch = 10 })
	eventually(t, "runner started", func() bool { _, ok := v.eng.StatsOf("behind"); return ok })
	if s := v.stats("behind"); s.Concurrency != minInFlight || s.Lag != 0 {
		t.Fatalf("before any event: concurrency %d, lag %s; want %d, 0", s.Concurrency, s.Lag, minInFlight)
	}

	want := map[string][]string{}
	for round := range 3 {
		for i := range 40 {
			dev := fmt.Sprintf("d%02d", i)
			kind := presence.Connected
			if round == 1 {
				kind = presence.Disconnected
			}
			want[dev] = append(want[dev], id(v.conn(dev, kind)))
		}
	}
	eventually(t, "all 120 events taken", func() bool { return v.stats("behind").Buffered == 120 })
	eventually(t, "concurrency grown to the maximum", func() bool { return v.stats("behind").Concurrency == 16 })
	v.clock.Advance(5 * time.Second)
	if lag := v.stats("behind").Lag; lag < 5*time.Second {
		t.Errorf("lag %s with the endpoint stuck for 5 s", lag)
	}

	mu.Lock()
	open = true
	mu.Unlock()
	close(gate)
	eventually(t, "all delivered", func() bool { return len(rc.delivered()) == 120 && v.stats("behind").Delivered == 120 })
	eventually(t, "caught up", func() bool {
		s := v.stats("behind")
		return s.Lag == 0 && s.Concurrency == minInFlight && s.InFlight == 0
	})

	batched := 0
	for _, p := range rc.all() {
		if len(p.Events) > 10 {
			t.Errorf("a POST of %d events; maxEventsPerBatch is 10", len(p.Events))
		}
		if len(p.Events) > 1 {
			batched++
		}
	}
	if batched == 0 {
		t.Error("the backlog went out one event per POST")
	}
	mu.Lock()
	if maxConc <= minInFlight {
		t.Errorf("at most %d POSTs at once while behind", maxConc)
	}
	mu.Unlock()
	for dev, ids := range want {
		if got := rc.deliveredIDs(dev); !equal(got, ids) {
			t.Errorf("%s: delivered %v, want %v", dev, got, ids)
		}
	}
	if o := rc.overlaps(); len(o) > 0 {
		t.Errorf("devices with concurrent POSTs: %v", o)
	}
	t.Logf("%d POSTs for 120 events, %d batched, at most %d at once", rc.count(), batched, maxConc)
}

func TestAgeQueueCompacts(t *testing.T) {
	var a ageQueue
	stuck := &entry{ev: events.Event{Time: time.Unix(100, 0)}}
	a.push(stuck, stuck.ev.Time, 0)
	for i := range 10000 {
		e := &entry{ev: events.Event{Time: time.Unix(200+int64(i), 0)}}
		a.push(e, e.ev.Time, 2)
		e.removed = true // delivered while the first one waits
	}
	if n := len(a.q) - a.head; n > 64 {
		t.Errorf("%d entries kept for 1 undelivered", n)
	}
	if got := a.oldest(); got != time.Unix(100, 0).UnixNano() {
		t.Errorf("oldest %d", got)
	}
	stuck.removed = true
	if got := a.oldest(); got != 0 {
		t.Errorf("oldest %d with nothing undelivered", got)
	}
}

// A disconnect the renewal filter holds is not lag (the subscription asked
// for the wait); once its grace ends without a renewal it is delivered, and
// an endpoint that then fails makes lag counted from the release, not from
// the disconnect two minutes earlier.
func TestLagLeavesHeldOut(t *testing.T) {
	v := newEnv(t)
	fail := false
	var mu sync.Mutex
	rc := newReceiver(t, v.clock, func(*http.Request, post) int {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	v.start()
	v.sub("quiet", rc.URL, suppress)
	v.conn("d1", presence.Connected)
	eventually(t, "connect delivered", func() bool { return v.stats("quiet").Delivered == 1 })
	v.conn("d1", presence.Disconnected, clientDisconnect)
	eventually(t, "disconnect held", func() bool { return v.stats("quiet").Held == 1 })
	v.clock.Advance(100 * time.Second)
	if lag := v.stats("quiet").Lag; lag != 0 {
		t.Errorf("lag %s with only a held disconnect", lag)
	}
	mu.Lock()
	fail = true
	mu.Unlock()
	v.clock.Advance(21 * time.Second) // the grace (120 s) ends: released, the POST fails
	eventually(t, "released and failed", func() bool { s := v.stats("quiet"); return s.Held == 0 && s.FailedAttempts == 1 })
	v.clock.Advance(5 * time.Second)
	if lag := v.stats("quiet").Lag; lag < 5*time.Second || lag > 10*time.Second {
		t.Errorf("lag %s, 5 s after the release; want it counted from the release", lag)
	}
}
