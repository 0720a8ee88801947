package delivery

import (
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
)

func suppress(s *events.Subscription) {
	s.Tether.SuppressRenewals = true
	s.Tether.RenewalGraceSeconds = 120
}

// renewalOf marks a connect as the token renewal that follows disconnect d.
func renewalOf(d presence.ConnectionEvent) func(*presence.ConnectionEvent) {
	return func(ce *presence.ConnectionEvent) { ce.TokenRenewal, ce.RenewalOf = true, d.Sequence }
}

func clientDisconnect(ce *presence.ConnectionEvent) {
	ce.Reason, ce.Result = presence.ReasonClient, presence.ResultOK
}

// Timeline with suppressRenewals (grace 120 s): d1 connects at t0; at
// t0+1h it disconnects (client DISCONNECT, as SDKs do to renew) and at
// t0+1h+2s reconnects, marked as the renewal of that disconnect: the
// receiver gets neither. A keep-alive drop at t0+1h+3s is delivered at
// once, and nothing came before it.
func TestRenewalSuppressed(t *testing.T) {
	v := newEnv(t)
	rc := newReceiver(t, v.clock, nil)
	v.start()
	v.sub("quiet", rc.URL, suppress)

	c0 := v.conn("d1", presence.Connected)
	// The engine has the answer too: advancing with the POST in flight
	// would fire its timeout.
	eventually(t, "first connect", func() bool { return len(rc.delivered()) == 1 && v.stats("quiet").Delivered == 1 })
	v.clock.Advance(time.Hour)
	d := v.conn("d1", presence.Disconnected, clientDisconnect)
	eventually(t, "disconnect held", func() bool { return v.stats("quiet").Held == 1 })
	v.clock.Advance(2 * time.Second)
	v.conn("d1", presence.Connected, renewalOf(d))
	eventually(t, "pair suppressed", func() bool { return v.stats("quiet").Suppressed == 2 })
	v.clock.Advance(time.Second)
	drop := v.conn("d1", presence.Disconnected)
	eventually(t, "real drop delivered", func() bool { return len(rc.delivered()) == 2 && v.stats("quiet").Delivered == 2 })
	if got := rc.deliveredIDs("d1"); !equal(got, ids(c0, drop)) {
		t.Errorf("delivered %v, want %v", got, ids(c0, drop))
	}
	if s := v.stats("quiet"); s.Held != 0 || s.Buffered != 0 {
		t.Errorf("stats %+v", s)
	}
}

// Timeline: d1's token expires at t0 (disconnect held); at t0+30s d1 is
// deleted from the registry (that event waits behind the held disconnect:
// order), while d2's events flow. At t0+119s nothing of d1 has been
// delivered; at t0+120s the disconnect goes, then the delete. A renewal
// connect arriving after that is delivered, marked tokenRenewal: the
// subscriber saw the disconnect, so it must see the connect.
func TestRenewalGraceExpires(t *testing.T) {
	v := newEnv(t)
	rc := newReceiver(t, v.clock, nil)
	v.start()
	v.sub("quiet", rc.URL, suppress)

	d := v.conn("d1", presence.Disconnected, func(ce *presence.ConnectionEvent) {
		ce.Reason, ce.Result = presence.ReasonTokenExpired, presence.ResultUnauthorized
	})
	eventually(t, "held", func() bool { return v.stats("quiet").Held == 1 })
	v.clock.Advance(30 * time.Second)
	del := v.change("d1", registry.OpDeleted)
	other := v.conn("d2", presence.Connected)
	eventually(t, "d2 flows", func() bool { return equal(rc.deliveredIDs("d2"), ids(other)) })
	eventually(t, "delete queued", func() bool { return v.stats("quiet").Buffered == 2 })
	v.clock.AdvanceTo(t0.Add(119 * time.Second))
	if got := rc.deliveredIDs("d1"); len(got) != 0 {
		t.Fatalf("d1 delivered %v inside the grace", got)
	}
	if p := v.clock.Pending(); len(p) != 1 || !p[0].Equal(t0.Add(120*time.Second)) {
		t.Fatalf("timers %v, want the end of the grace", p)
	}
	v.clock.AdvanceTo(t0.Add(120 * time.Second))
	eventually(t, "disconnect then delete", func() bool { return len(rc.deliveredIDs("d1")) == 2 })
	if got, want := rc.deliveredIDs("d1"), []string{id(d), changeID(del)}; !equal(got, want) {
		t.Errorf("d1: %v, want %v", got, want)
	}
	v.clock.Advance(time.Second)
	late := v.conn("d1", presence.Connected, renewalOf(d))
	eventually(t, "late renewal delivered", func() bool { return len(rc.deliveredIDs("d1")) == 3 })
	last := rc.delivered()[len(rc.delivered())-1]
	if last.ID != id(late) || !last.Data.Tether.TokenRenewal {
		t.Errorf("late renewal %+v", last)
	}
}

// A held disconnect is settled by the device's next connection event: a
// connect that is not its renewal releases it at once (both delivered, in
// order, without waiting for the grace).
func TestRenewalReleasedByOtherConnect(t *testing.T) {
	v := newEnv(t)
	rc := newReceiver(t, v.clock, nil)
	v.start()
	v.sub("quiet", rc.URL, suppress)
	d := v.conn("d1", presence.Disconnected, clientDisconnect)
	eventually(t, "held", func() bool { return v.stats("quiet").Held == 1 })
	v.clock.Advance(5 * time.Second)
	c := v.conn("d1", presence.Connected) // new token, not a renewal (e.g. older expiry)
	eventually(t, "both delivered", func() bool { return len(rc.deliveredIDs("d1")) == 2 })
	if got := rc.deliveredIDs("d1"); !equal(got, ids(d, c)) {
		t.Errorf("%v, want %v", got, ids(d, c))
	}
}

// Without suppressRenewals both halves are delivered at once, the connect
// marked tokenRenewal.
func TestRenewalNotSuppressed(t *testing.T) {
	v := newEnv(t)
	rc := newReceiver(t, v.clock, nil)
	v.start()
	v.sub("plain", rc.URL)
	d := v.conn("d1", presence.Disconnected, clientDisconnect)
	c := v.conn("d1", presence.Connected, renewalOf(d))
	eventually(t, "both delivered", func() bool { return len(rc.deliveredIDs("d1")) == 2 })
	got := rc.delivered()
	if !equal(rc.deliveredIDs("d1"), ids(d, c)) || got[0].Data.Tether.TokenRenewal || !got[1].Data.Tether.TokenRenewal {
		t.Errorf("%+v", got)
	}
}

// A subscription to DeviceConnected only never sees the disconnect of a
// renewal, so it does not get the renewal connect either; a fresh connect
// is delivered.
func TestRenewalConnectOnlySubscription(t *testing.T) {
	v := newEnv(t)
	rc := newReceiver(t, v.clock, nil)
	v.start()
	v.sub("connects", rc.URL, suppress, func(s *events.Subscription) {
		s.Filter.IncludedEventTypes = []events.EventType{events.DeviceConnected}
	})
	d := v.conn("d1", presence.Disconnected, clientDisconnect)
	v.conn("d1", presence.Connected, renewalOf(d))
	v.clock.Advance(time.Hour)
	v.conn("d1", presence.Disconnected)
	fresh := v.conn("d1", presence.Connected)
	eventually(t, "fresh connect", func() bool { return len(rc.delivered()) == 1 })
	if got := rc.deliveredIDs("d1"); !equal(got, ids(fresh)) {
		t.Errorf("%v, want %v", got, ids(fresh))
	}
	if s := v.stats("connects"); s.Suppressed != 1 {
		t.Errorf("stats %+v", s)
	}
}

// A renewal storm larger than the buffer (4): the held disconnects fill
// it, so their connects cannot be read. Once the grace has passed, holds
// are released while nothing else can free the buffer (the pairing cannot
// be seen; both halves are delivered, in order) rather than waiting for a
// journal position the engine cannot reach. Which pairs are suppressed
// depends on timing; every device ends with both halves or neither.
func TestHeldDisconnectsCannotDeadlock(t *testing.T) {
	v := newEnv(t, func(o *Options) { o.MaxBufferedPerSub = 4 })
	rc := newReceiver(t, v.clock, nil)
	v.start()
	v.sub("storm", rc.URL, suppress)
	var ds, cs []presence.ConnectionEvent
	for i := 0; i < 6; i++ {
		ds = append(ds, v.conn(string(rune('a'+i)), presence.Disconnected, clientDisconnect))
	}
	for _, d := range ds {
		cs = append(cs, v.conn(d.DeviceID, presence.Connected, renewalOf(d)))
	}
	eventually(t, "buffer full of holds", func() bool { return v.stats("storm").Held == 4 })
	v.clock.Advance(121 * time.Second)
	eventually(t, "everything settled", func() bool {
		s := v.stats("storm")
		return s.Buffered == 0 && int(s.Suppressed)+len(rc.delivered()) == 12
	})
	if len(rc.delivered()) == 0 {
		t.Error("no hold was released")
	}
	for i, d := range ds {
		if got := rc.deliveredIDs(d.DeviceID); len(got) != 0 && !equal(got, ids(d, cs[i])) {
			t.Errorf("%s: %v", d.DeviceID, got)
		}
	}
}
