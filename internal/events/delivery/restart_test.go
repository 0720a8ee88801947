package delivery

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
)

// publishRounds journals rounds of connect/disconnect events for devices,
// interleaved, and returns each device's event ids in order.
func (v *env) publishRounds(devices, rounds int) map[string][]string {
	want := map[string][]string{}
	for r := 0; r < rounds; r++ {
		for d := 0; d < devices; d++ {
			dev := fmt.Sprintf("dev%02d", d)
			kind := presence.Connected
			if r%2 == 1 {
				kind = presence.Disconnected
			}
			want[dev] = append(want[dev], id(v.conn(dev, kind)))
		}
	}
	return want
}

// checkOrder: every event of every device was delivered at least once, and
// each device's first deliveries are in journal order.
func checkOrder(t *testing.T, rc *receiver, want map[string][]string) {
	t.Helper()
	for dev, ids := range want {
		var first []string
		seen := map[string]bool{}
		for _, x := range rc.deliveredIDs(dev) {
			if !seen[x] {
				seen[x] = true
				first = append(first, x)
			}
		}
		if !equal(first, ids) {
			t.Errorf("%s: delivered %v, want %v", dev, first, ids)
		}
	}
}

func allDelivered(rc *receiver, want map[string][]string) bool {
	seen := map[string]bool{}
	for _, e := range rc.delivered() {
		seen[e.ID] = true
	}
	for _, ids := range want {
		for _, x := range ids {
			if !seen[x] {
				return false
			}
		}
	}
	return true
}

// Crash: the hub dies (journal and engine together, nothing handed back)
// while two devices' events are delivered and three devices' endpoint
// fails. After the restart, with the endpoint back, every event is
// delivered at least once with the same ids, in order per device, and the
// consumer has nothing left unacknowledged. Recovery does not wait for the
// AckWait (30 s) to bring the dead runner's messages back.
func TestCrashResumesWithoutLoss(t *testing.T) {
	var logBuf syncBuf
	v := newEnv(t, func(o *Options) { o.AckWait = 30 * time.Second }, debugLog(&logBuf))
	rc := newReceiver(t, v.clock, func(_ *http.Request, p post) int {
		switch p.Events[0].Subject {
		case "devices/dev00", "devices/dev01":
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	})
	e1 := v.start()
	v.sub("crash", rc.URL)
	v.dumpOnFailure("crash", rc, &logBuf)
	want := v.publishRounds(5, 4)
	eventually(t, "healthy devices delivered", func() bool {
		return len(rc.deliveredIDs("dev00")) == 4 && len(rc.deliveredIDs("dev01")) == 4
	})
	waitRetry(t, v, "crash", 3)

	// kill: the server goes first, so nothing the engine does reaches it.
	v.j.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := e1.Stop(ctx); err != nil {
		t.Fatalf("stopping the orphaned engine: %v", err)
	}
	cancel()
	before := rc.count()

	rc.setAnswer(nil)
	v.openJournal()
	start := time.Now()
	v.start()
	eventually(t, "all delivered after the restart", func() bool { return allDelivered(rc, want) })
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("delivery resumed %v after the restart (AckWait is 30 s)", d)
	}
	checkOrder(t, rc, want)
	// After the restart each device's events arrive in order, none twice.
	after := map[string][]string{}
	for _, p := range rc.all()[before:] {
		for _, e := range p.Events {
			dev := e.Data.DeviceID
			after[dev] = append(after[dev], e.ID)
		}
	}
	for _, dev := range []string{"dev02", "dev03", "dev04"} {
		if !equal(after[dev], want[dev]) {
			t.Errorf("%s after restart: %v, want %v", dev, after[dev], want[dev])
		}
	}
	eventually(t, "consumer settled", func() bool {
		return v.consumerInfo(journal.StreamConn, "crash").NumAckPending == 0
	})
}

// After a crash the runner recovers: it waits (AckWait shortened to 1 s)
// for the messages the dead runner held, and parks newer ones, here the
// events journalled while the hub was down, with a delay counted against
// that short AckWait. JetStream dates a delayed Nak with the AckWait in
// force, so once the normal AckWait (30 s) is restored the parked events
// would stay away for 30 s unless recovery recalls them. One held message
// is deleted from the stream as well, so recovery cannot count on all of
// them coming back.
func TestRecoveryRecallsParkedEvents(t *testing.T) {
	var logBuf syncBuf
	v := newEnv(t, func(o *Options) { o.AckWait = 30 * time.Second }, debugLog(&logBuf))
	rc := newReceiver(t, v.clock, func(*http.Request, post) int { return http.StatusServiceUnavailable })
	e1 := v.start()
	v.sub("strand", rc.URL)
	v.dumpOnFailure("strand", rc, &logBuf)
	want := v.publishRounds(2, 2) // stream sequences 1–4, all held by e1
	waitRetry(t, v, "strand", 2)
	eventually(t, "all four held", func() bool {
		return v.consumerInfo(journal.StreamConn, "strand").NumAckPending == 4
	})

	v.j.Close() // crash
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = e1.Stop(ctx)
	cancel()
	v.openJournal()
	st, err := v.j.JS.Stream(v.ctx, journal.StreamConn)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(v.ctx, 1); err != nil { // dev00's first event
		t.Fatal(err)
	}
	want["dev00"] = want["dev00"][1:]
	for dev, ids := range v.publishRounds(2, 2) { // journalled while down
		want[dev] = append(want[dev], ids...)
	}

	rc.setAnswer(nil)
	start := time.Now()
	v.start()
	eventually(t, "all delivered after the restart", func() bool { return allDelivered(rc, want) })
	d := time.Since(start)
	t.Logf("delivered %v after the restart", d)
	if d > 9*time.Second {
		t.Errorf("delivery finished %v after the restart; recovery ends within 4 s", d)
	}
	if v.stats("strand").Parked == 0 {
		t.Log("nothing was parked during recovery this time; the case was not exercised")
	}
	checkOrder(t, rc, want)
}

// Graceful restart: Stop hands undelivered messages back at once, so the
// next engine resumes without waiting for AckWait (20 s here); events
// journalled while no engine ran are delivered too.
func TestRestartResumes(t *testing.T) {
	v := newEnv(t, func(o *Options) { o.AckWait = 20 * time.Second })
	rc := newReceiver(t, v.clock, func(*http.Request, post) int { return http.StatusServiceUnavailable })
	e1 := v.start()
	v.sub("restart", rc.URL)
	want := v.publishRounds(3, 2)
	waitRetry(t, v, "restart", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := e1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	for dev, ids := range v.publishRounds(3, 2) {
		want[dev] = append(want[dev], ids...)
	}
	rc.setAnswer(nil)
	start := time.Now()
	v.start()
	eventually(t, "all delivered", func() bool { return allDelivered(rc, want) })
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("resumed after %v", d)
	}
	checkOrder(t, rc, want)
	if s := v.stats("restart"); s.Recovering {
		t.Errorf("stats %+v", s)
	}
}

// A receiver that never answers must not slow anything else: another
// subscription gets every event, the stuck one holds at most
// MaxBufferedPerSub events in memory (one device at most
// MaxQueuePerDevice; the rest is parked or left in JetStream). When the
// endpoint recovers, every event arrives, in order per device.
func TestSlowReceiverIsBounded(t *testing.T) {
	v := newEnv(t, func(o *Options) {
		o.MaxBufferedPerSub, o.MaxInFlightPerSub, o.MaxQueuePerDevice = 40, 4, 3
		o.ParkDelay = 50 * time.Millisecond
	})
	const hung = 599
	slow := newReceiver(t, v.clock, func(r *http.Request, _ post) int {
		<-r.Context().Done()
		return hung
	})
	fast := newReceiver(t, v.clock, nil)
	v.start()
	v.sub("slow", slow.URL)
	v.sub("fast", fast.URL)
	want := v.publishRounds(20, 6) // 120 events
	eventually(t, "fast receiver has everything", func() bool { return allDelivered(fast, want) })
	checkOrder(t, fast, want)

	eventually(t, "slow subscription full", func() bool { return v.stats("slow").Buffered == 40 })
	s := v.stats("slow")
	if s.InFlight != 4 || s.Buffered > 40 {
		t.Errorf("stats %+v", s)
	}
	info := v.consumerInfo(journal.StreamConn, "slow")
	if info.NumPending+uint64(info.NumAckPending) < 80 {
		t.Errorf("JetStream holds %d pending + %d unacknowledged, want the backlog", info.NumPending, info.NumAckPending)
	}

	slow.setAnswer(nil)
	v.clock.Advance(30 * time.Second) // the 4 stuck POSTs time out
	eventually(t, "timeouts settled", func() bool { return v.stats("slow").FailedAttempts == 4 })
	// 16 devices flow; the 4 whose POST timed out wait for their retry,
	// each with a full queue (3) and the rest of its events parked.
	eventually(t, "backlog flowing, 4 devices waiting", func() bool {
		st := v.stats("slow")
		return st.InFlight == 0 && st.Devices == 4 && st.Buffered == 12 && st.Delivered == 96
	})
	v.clock.Advance(11 * time.Second) // their retries
	eventually(t, "slow receiver caught up", func() bool { return allDelivered(slow, want) })
	checkOrder(t, slow, want)
	if o := slow.overlaps(); len(o) > 0 {
		t.Errorf("concurrent POSTs for %v", o)
	}
}

// A device whose queue is full has its later events parked in JetStream
// for ParkDelay (10 s here). Once its queue drains they are recalled at
// once, each one as the one before it is taken, so the backlog flows at
// the endpoint's pace rather than one park delay at a time.
func TestParkedEventsAreRecalledWhenTheQueueDrains(t *testing.T) {
	v := newEnv(t, func(o *Options) {
		o.AckWait = 20 * time.Second // ParkDelay 10 s
		o.MaxQueuePerDevice = 2
	})
	rc := newReceiver(t, v.clock, func(*http.Request, post) int { return http.StatusServiceUnavailable })
	v.start()
	v.sub("recall", rc.URL)
	want := v.publishRounds(1, 8) // one device, 8 events
	retryAt := waitRetry(t, v, "recall", 1)
	eventually(t, "the rest parked", func() bool { return v.stats("recall").Parked >= 6 })

	rc.setAnswer(nil)
	start := time.Now()
	v.clock.Advance(retryAt.Sub(v.clock.Now()) + time.Second)
	eventually(t, "the backlog delivered", func() bool { return allDelivered(rc, want) })
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("backlog took %v; the park delay is 10 s", d)
	}
	checkOrder(t, rc, want)
}
