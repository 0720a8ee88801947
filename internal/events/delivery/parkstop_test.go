package delivery

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
)

// A graceful hand-over keeps a device's order although most of its events
// were parked: one device, a queue of 2, 8 events to a failing endpoint,
// so 6 are parked (NakWithDelay). The park delay (1 h) is longer than the
// next engine's recovery window, as it is in a cluster when the next
// engine's recovery ends before a parked message's delay: unless the
// stopping engine hands its parked messages back, they return only after
// newer events of the device (journalled after the hand-over) went out.
func TestStopHandsParkedEventsBack(t *testing.T) {
	var logBuf syncBuf
	v := newEnv(t, func(o *Options) {
		o.AckWait = 30 * time.Second
		o.ParkDelay = time.Hour
		o.MaxQueuePerDevice = 2
	}, debugLog(&logBuf))
	rc := newReceiver(t, v.clock, func(*http.Request, post) int { return http.StatusServiceUnavailable })
	e1 := v.start()
	v.sub("parkstop", rc.URL)
	v.dumpOnFailure("parkstop", rc, &logBuf)
	var want []string
	for i := 0; i < 8; i++ {
		kind := presence.Connected
		if i%2 == 1 {
			kind = presence.Disconnected
		}
		want = append(want, id(v.conn("dev00", kind)))
	}
	eventually(t, "six parked, eight pending", func() bool {
		return v.stats("parkstop").Parked >= 6 &&
			v.consumerInfo(journal.StreamConn, "parkstop").NumAckPending == 8
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := e1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()

	rc.setAnswer(nil)
	v.start()
	for i := 0; i < 2; i++ { // journalled after the hand-over
		want = append(want, id(v.conn("dev00", presence.Connected)))
	}
	// The newest event is delivered either way (the parked ones are
	// not waited for past the recovery); the older ones must precede it.
	last := want[len(want)-1]
	eventually(t, "the newest event delivered", func() bool {
		return slices.Contains(rc.deliveredIDs("dev00"), last)
	})
	checkOrder(t, rc, map[string][]string{"dev00": want})
}
