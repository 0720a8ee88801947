package delivery

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/presence"
)

// Timeline: the endpoint answers 404 for d1 (a route not deployed yet):
// d1's three events are dead-lettered at once, each after one attempt,
// while d2 is delivered. The dead letters list in order with Event Grid's
// fields; after the fix, Replay delivers them in order and they leave the
// list. Replaying one id replays just that one.
func TestDeadLetterReplay(t *testing.T) {
	v := newEnv(t)
	rc := newReceiver(t, v.clock, func(_ *http.Request, p post) int {
		if p.Events[0].Subject == "devices/d1" {
			return http.StatusNotFound
		}
		return http.StatusOK
	})
	v.start()
	v.sub("hook", rc.URL)
	a := v.conn("d1", presence.Connected)
	b := v.conn("d1", presence.Disconnected)
	c := v.conn("d1", presence.Connected)
	v.conn("d2", presence.Connected)
	eventually(t, "dead letters", func() bool { return v.stats("hook").DeadLettered == 3 })
	eventually(t, "d2", func() bool { return len(rc.deliveredIDs("d2")) == 1 })

	dls, err := v.eng.DeadLetters(v.ctx, "hook", 0)
	if err != nil || len(dls) != 3 {
		t.Fatalf("%d dead letters, %v", len(dls), err)
	}
	for i, want := range ids(a, b, c) {
		d := dls[i]
		if d.Event.ID != want || d.Reason != events.DeadLetterNonRetriable || d.DeliveryAttempts != 1 ||
			d.LastHTTPStatus != 404 || d.LastDeliveryOutcome != "NotFound" || d.Seq == 0 || d.Event.DeviceID != "d1" {
			t.Errorf("dead letter %d: %+v", i, d)
		}
	}
	var wire map[string]any
	if err := json.Unmarshal(dls[0].JSON(events.EventGridSchema), &wire); err != nil || wire["deadLetterReason"] != "NonRetriableHttpStatus" ||
		wire["lastDeliveryOutcome"] != "NotFound" || wire["id"] != id(a) {
		t.Errorf("Event Grid form %v %v", wire, err)
	}
	if got, _ := v.eng.DeadLetters(v.ctx, "hook", 2); len(got) != 2 {
		t.Errorf("limit 2: %d", len(got))
	}

	rc.setAnswer(nil)
	n, err := v.eng.Replay(v.ctx, "hook", id(b))
	if err != nil || n != 1 {
		t.Fatalf("replay one: %d %v", n, err)
	}
	eventually(t, "one replayed", func() bool { return equal(rc.deliveredIDs("d1"), ids(b)) })
	eventually(t, "its record gone", func() bool {
		l, _ := v.eng.DeadLetters(v.ctx, "hook", 0)
		return len(l) == 2
	})
	n, err = v.eng.Replay(v.ctx, "hook")
	if err != nil || n != 2 {
		t.Fatalf("replay all: %d %v", n, err)
	}
	eventually(t, "all replayed", func() bool { return len(rc.deliveredIDs("d1")) == 3 })
	if got := rc.deliveredIDs("d1"); !equal(got, ids(b, a, c)) {
		t.Errorf("d1: %v", got)
	}
	eventually(t, "list empty", func() bool {
		l, _ := v.eng.DeadLetters(v.ctx, "hook", 0)
		return len(l) == 0
	})
}

// A replayed event that fails again is dead-lettered again: one record
// remains, with the new attempt.
func TestReplayFailsAgain(t *testing.T) {
	v := newEnv(t)
	rc := newReceiver(t, v.clock, func(*http.Request, post) int { return http.StatusForbidden })
	v.start()
	v.sub("hook", rc.URL)
	a := v.conn("d1", presence.Connected)
	eventually(t, "dead letter", func() bool { return v.stats("hook").DeadLettered == 1 })
	v.clock.Advance(1)
	if n, err := v.eng.Replay(v.ctx, "hook"); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	eventually(t, "dead again", func() bool { return v.stats("hook").DeadLettered == 2 })
	l, _ := v.eng.DeadLetters(v.ctx, "hook", 0)
	if len(l) != 1 || l[0].Event.ID != id(a) || !l[0].LastDeliveryAttemptTime.Equal(t0.Add(1)) {
		t.Errorf("%+v", l)
	}
	if n, err := v.eng.DiscardDeadLetters(v.ctx, "hook"); n != 1 || err != nil {
		t.Errorf("discard %d %v", n, err)
	}
	if l, _ := v.eng.DeadLetters(v.ctx, "hook", 0); len(l) != 0 {
		t.Errorf("after discard %+v", l)
	}
}

// deadLetterDestination None: undeliverable events are dropped, as Event
// Grid does without dead-lettering.
func TestDeadLetterNone(t *testing.T) {
	v := newEnv(t)
	rc := newReceiver(t, v.clock, func(*http.Request, post) int { return http.StatusBadRequest })
	v.start()
	v.sub("hook", rc.URL, func(s *events.Subscription) {
		s.DeadLetterDestination = &events.DeadLetterDestination{EndpointType: events.DeadLetterNone}
	})
	v.conn("d1", presence.Connected)
	eventually(t, "dropped", func() bool { return v.stats("hook").Dropped == 1 })
	if l, _ := v.eng.DeadLetters(v.ctx, "hook", 0); len(l) != 0 {
		t.Errorf("%+v", l)
	}
}
