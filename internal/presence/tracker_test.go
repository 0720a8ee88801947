package presence

import (
	"sync"
	"testing"
	"time"
)

type recorder struct {
	mu     sync.Mutex
	events []ConnectionEvent
}

func (r *recorder) sink(ev ConnectionEvent) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func newTestTracker(epoch uint64) (*Tracker, *recorder) {
	r := &recorder{}
	clock := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Second)
		return clock
	}
	return NewTracker(Options{Hub: "hub", Epoch: epoch, Sink: r.sink, Now: now}), r
}

func TestTakeoverIsSequencedBeforeTheNewConnect(t *testing.T) {
	tr, rec := newTestTracker(7)
	a := &Session{ID: "a", DeviceID: "d1"}
	b := &Session{ID: "b", DeviceID: "d1"}
	tr.Connect(a)
	tr.Connect(b) // b's establish runs before a's disconnect hook
	if tr.Disconnect(a, ReasonTakeover, ResultTakeover, "") {
		t.Fatal("late disconnect of a superseded session must emit nothing")
	}
	if !tr.Disconnect(b, ReasonClient, ResultOK, "") {
		t.Fatal("disconnect of the current session must emit")
	}
	want := []struct {
		kind    Kind
		session string
		reason  Reason
		result  string
	}{
		{Connected, "a", "", ""},
		{Disconnected, "a", ReasonTakeover, "400027"},
		{Connected, "b", "", ""},
		{Disconnected, "b", ReasonClient, ""},
	}
	if len(rec.events) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(rec.events), len(want), rec.events)
	}
	prev := ""
	for i, w := range want {
		ev := rec.events[i]
		if ev.Kind != w.kind || ev.SessionID != w.session || ev.Reason != w.reason || ev.Result.Type != w.result {
			t.Errorf("event %d = %s/%s/%s/%s, want %+v", i, ev.Kind, ev.SessionID, ev.Reason, ev.Result.Type, w)
		}
		if len(ev.Sequence) != 64 || ev.Sequence <= prev {
			t.Errorf("event %d sequence %q not 64 digits increasing after %q", i, ev.Sequence, prev)
		}
		prev = ev.Sequence
	}
	if rec.events[1].DurationMs <= 0 {
		t.Errorf("takeover disconnect has no connect duration")
	}
	if tr.Connected() != 0 {
		t.Errorf("connected = %d, want 0", tr.Connected())
	}
}

func TestSequenceGrowsAcrossEpochs(t *testing.T) {
	// A restart gets a larger epoch; its first number must beat the last
	// number of the previous run however many events that run had.
	old := FormatSequence(100, 0, 1<<60)
	next := FormatSequence(101, 0, 1)
	if !(next > old) {
		t.Fatalf("%s is not after %s", next, old)
	}
	if len(old) != 64 {
		t.Fatalf("length %d", len(old))
	}
	for _, c := range old {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			t.Fatalf("not upper-case hex: %q", old)
		}
	}
}

func TestStateAndTouch(t *testing.T) {
	tr, _ := newTestTracker(1)
	if c, _, _ := tr.State("x"); c {
		t.Fatal("unknown device reported connected")
	}
	s := &Session{ID: "s", DeviceID: "x"}
	tr.Connect(s)
	_, _, act1 := tr.State("x")
	tr.Touch("x")
	c, upd, act2 := tr.State("x")
	if !c || upd.IsZero() || !act2.After(act1) {
		t.Fatalf("state after touch: connected=%v updated=%v activity %v → %v", c, upd, act1, act2)
	}
	if tr.Current("x") != s {
		t.Fatal("Current is not the connected session")
	}
}

func TestRefuseHasIDAndNoSequence(t *testing.T) {
	tr, rec := newTestTracker(1)
	tr.Refuse(ConnectionEvent{DeviceID: "x", Reason: ReasonAuthFailed, Result: ResultUnauthorized})
	ev := rec.events[0]
	if ev.Kind != Refused || ev.ID == "" || ev.Sequence != "" || ev.Hub != "hub" {
		t.Fatalf("refusal = %+v", ev)
	}
}

func TestFormatSequenceLayout(t *testing.T) {
	got := FormatSequence(0x01D4132452F67CE2, 2, 1)
	// The layout of IoT Hub's public sample (reference/iothub-facts.md §1.3).
	want := "0000000000000000" + "01D4132452F67CE2" + "00000002" + "000000000000000000000001"
	if got != want {
		t.Fatalf("FormatSequence = %s, want %s", got, want)
	}
}

func TestTokenRenewalIsMarked(t *testing.T) {
	tr, rec := newTestTracker(1) // the test clock advances 1 s per reading
	exp := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	a := &Session{ID: "a", DeviceID: "d", TokenExpiry: exp}
	tr.Connect(a)
	tr.Disconnect(a, ReasonClient, ResultOK, "")
	b := &Session{ID: "b", DeviceID: "d", TokenExpiry: exp.Add(45 * time.Minute)}
	tr.Connect(b) // renewal: client disconnect, later token, within grace
	if ev := rec.events[2]; !ev.TokenRenewal || ev.RenewalOf != rec.events[1].Sequence {
		t.Fatalf("renewal connect not marked: %+v", ev)
	}
	for _, tc := range []struct {
		name   string
		reason Reason
		expiry time.Time
	}{
		{"network drop is not a renewal", ReasonNetwork, exp.Add(2 * time.Hour)},
		{"same token is not a renewal", ReasonClient, exp.Add(45 * time.Minute)},
		{"token expiry then a later token is", ReasonTokenExpired, exp.Add(3 * time.Hour)},
	} {
		cur := tr.Current("d")
		tr.Disconnect(cur, tc.reason, ResultOK, "")
		next := &Session{ID: tc.name, DeviceID: "d", TokenExpiry: tc.expiry}
		if tc.name == "same token is not a renewal" {
			next.TokenExpiry = cur.TokenExpiry
		}
		tr.Connect(next)
		ev := rec.events[len(rec.events)-1]
		want := tc.reason == ReasonTokenExpired
		if ev.TokenRenewal != want {
			t.Errorf("%s: TokenRenewal = %v", tc.name, ev.TokenRenewal)
		}
	}
	// Past the grace period it is a plain reconnect.
	slow, srec := newTestTrackerWithGrace(1, 500*time.Millisecond)
	s1 := &Session{ID: "1", DeviceID: "x", TokenExpiry: exp}
	slow.Connect(s1)
	slow.Disconnect(s1, ReasonClient, ResultOK, "")
	slow.Connect(&Session{ID: "2", DeviceID: "x", TokenExpiry: exp.Add(time.Hour)})
	if srec.events[2].TokenRenewal {
		t.Error("a reconnect after the grace period was marked as a renewal")
	}
}

func newTestTrackerWithGrace(epoch uint64, grace time.Duration) (*Tracker, *recorder) {
	r := &recorder{}
	clock := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { clock = clock.Add(time.Second); return clock }
	return NewTracker(Options{Hub: "hub", Epoch: epoch, Sink: r.sink, Now: now, RenewalGrace: grace}), r
}

func TestOrphanedSessionIsClosedOnce(t *testing.T) {
	tr, rec := newTestTracker(2)
	last := ConnectionEvent{Kind: Connected, DeviceID: "d", SessionID: "old", Sequence: FormatSequence(1, 0, 7), Time: time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)}
	tr.Orphaned(last)
	ev := rec.events[0]
	if ev.Kind != Disconnected || ev.Reason != ReasonHubRestart || ev.Result != ResultServerError || ev.SessionID != "old" || !(ev.Sequence > last.Sequence) || ev.DurationMs <= 0 {
		t.Fatalf("orphan close = %+v", ev)
	}
	if tr.Connected() != 0 {
		t.Fatalf("connected = %d", tr.Connected())
	}
	s := &Session{ID: "new", DeviceID: "d"}
	tr.Connect(s)
	tr.Orphaned(last) // a device already back in this run is left alone
	if len(rec.events) != 2 {
		t.Fatalf("events %d", len(rec.events))
	}
}

// A session forgotten (its end recorded elsewhere, or later) is no
// longer current: nothing is recorded, the connected count drops, and a
// later adoption of it records its end.
func TestForgetDropsTheSessionUnrecorded(t *testing.T) {
	var evs []ConnectionEvent
	tr := NewTracker(Options{Hub: "h", Epoch: 1, Sink: func(ev ConnectionEvent) { evs = append(evs, ev) }})
	s := &Session{ID: NewSessionID(), DeviceID: "d", Protocol: "MQTT"}
	tr.Connect(s)
	tr.Forget(s)
	if len(evs) != 1 || tr.Connected() != 0 || tr.Current("d") != nil {
		t.Fatalf("after Forget: %d events, %d connected, current %v; want only the connect, 0, nil", len(evs), tr.Connected(), tr.Current("d"))
	}
	c := *s
	tr.Adopted(&c, ReasonNodeLost, ResultClosedRemotely, "test")
	if len(evs) != 2 || evs[1].Kind != Disconnected || evs[1].Reason != ReasonNodeLost {
		t.Fatalf("the adoption after Forget recorded %+v, want a node-lost disconnect", evs[1:])
	}
}

// A fenced node adopts its own session before the broker's end of it
// has run Forget (a slow close): the adoption ends the current session
// and records it once; the late Forget records nothing more. Another
// session current for the device is left alone.
func TestAdoptedEndsTheSameSessionStillCurrent(t *testing.T) {
	var evs []ConnectionEvent
	tr := NewTracker(Options{Hub: "h", Epoch: 1, Sink: func(ev ConnectionEvent) { evs = append(evs, ev) }})
	s := &Session{ID: NewSessionID(), DeviceID: "d", Protocol: "MQTT"}
	tr.Connect(s)
	c := *s // the cluster's copy, built from the owner record
	ended := false
	c.Ended = func(error) { ended = true }
	tr.Adopted(&c, ReasonNodeLost, ResultClosedRemotely, "test")
	if len(evs) != 2 || evs[1].Kind != Disconnected || evs[1].Reason != ReasonNodeLost || evs[1].SessionID != s.ID {
		t.Fatalf("adopting the current session recorded %+v, want its node-lost disconnect", evs[1:])
	}
	if tr.Connected() != 0 || tr.Current("d") != nil {
		t.Fatalf("after the adoption: %d connected, current %v; want 0, nil", tr.Connected(), tr.Current("d"))
	}
	if evs[1].Recorded == nil {
		t.Fatal("the adoption's event carries no Recorded callback")
	}
	evs[1].Recorded(nil)
	if !ended {
		t.Fatal("Ended not passed on")
	}
	tr.Forget(s)
	if len(evs) != 2 || tr.Connected() != 0 {
		t.Fatalf("the late Forget: %d events, %d connected; want 2, 0", len(evs), tr.Connected())
	}

	o := &Session{ID: NewSessionID(), DeviceID: "d", Protocol: "MQTT"}
	tr.Connect(o)
	old := *s
	tr.Adopted(&old, ReasonNodeLost, ResultClosedRemotely, "test")
	if len(evs) != 3 || tr.Current("d") != o || tr.Connected() != 1 {
		t.Fatalf("adopting an old session while another is current: %d events, current %v; want 3, the new one", len(evs), tr.Current("d"))
	}
}
