package insight_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/insight"
)

// fleetOf connects n devices, spread over sources, and returns them.
func fleetOf(f *fleet, n int, src func(i int) string) []*client {
	cs := make([]*client, n)
	for i := range cs {
		cs[i] = f.client(fmt.Sprintf("dev-%04d", i), src(i), nodeSDK, time.Hour, 120)
		cs[i].connect()
		f.after(time.Millisecond)
	}
	return cs
}

// background drops a random device now and then and brings it back: the
// noise an incident must stand out from.
func background(f *fleet, cs []*client, r *rand.Rand, span time.Duration, every time.Duration) {
	end := f.now.Add(span)
	for f.now.Before(end) {
		f.after(every/2 + time.Duration(r.Int64N(int64(every))))
		c := cs[r.IntN(len(cs))]
		if c.sess == nil {
			continue
		}
		c.reset()
		f.after(time.Duration(200+r.IntN(800)) * time.Millisecond)
		c.connect()
		f.engine.Tick(f.now)
	}
}

func TestMassDisconnectIsOneIncident(t *testing.T) {
	f := newFleet(t, insight.Options{})
	r := rand.New(rand.NewPCG(11, 12))
	cs := fleetOf(f, 2000, func(i int) string {
		if i < 500 {
			return "10.2.3.XXX" // the site that loses its uplink
		}
		return fmt.Sprintf("10.%d.%d.XXX", 10+i%7, i%200)
	})
	background(f, cs, r, 10*time.Minute, 3*time.Second)
	if n := len(f.emitted); n != 0 {
		t.Fatalf("background noise made %d records: %+v", n, f.emitted[0])
	}
	// The site's 500 devices drop within 2 s.
	start := f.now.Add(time.Second)
	for i := range 500 {
		f.now = start.Add(time.Duration(i) * 4 * time.Millisecond)
		cs[i].reset()
	}
	// Their SDKs come back 5–30 s later; the rest of the fleet carries on.
	back := r.Perm(500)
	for k, i := range back {
		f.now = start.Add(5*time.Second + time.Duration(k)*50*time.Millisecond)
		cs[i].connect()
		if k%50 == 0 {
			f.engine.Tick(f.now)
		}
	}
	background(f, cs[500:], r, 5*time.Minute, 3*time.Second)

	var opened, closed []insight.Record
	for _, rec := range f.emitted {
		switch rec.Kind {
		case insight.KindMassDisconnect:
			opened = append(opened, rec)
		case insight.KindMassDisconnectResolved:
			closed = append(closed, rec)
		}
	}
	if len(opened) != 1 || len(closed) != 1 {
		t.Fatalf("want one incident opened and closed, got %d opened, %d closed: %+v", len(opened), len(closed), f.emitted)
	}
	inc := opened[0].Incident
	if d := opened[0].Time.Sub(start); d > 10*time.Second {
		t.Errorf("announced %s after the drop began, want ≤ 10 s", d)
	}
	if inc.Devices < 100 {
		t.Errorf("announced with %d devices", inc.Devices)
	}
	fin := closed[0].Incident
	if fin.Devices < 495 || fin.Devices > 510 {
		t.Errorf("closed with %d devices, want the 500 of the site (± the background)", fin.Devices)
	}
	if fin.Recovered < int(0.9*float64(fin.Devices)) {
		t.Errorf("closed with %d of %d back", fin.Recovered, fin.Devices)
	}
	top := map[string]insight.GroupValue{}
	for _, g := range fin.Groups {
		if len(g.Values) > 0 {
			top[g.Dimension] = g.Values[0]
		}
	}
	if v := top[insight.DimSourcePrefix]; v.Value != "10.2.3.XXX" || v.Share < 0.95 {
		t.Errorf("source prefix %+v, want 10.2.3.XXX ≥ 95 %%", v)
	}
	if v := top[insight.DimResultType]; v.Value != "404104" || v.Share < 0.99 {
		t.Errorf("result type %+v", v)
	}
	if v := top[insight.DimReason]; v.Value != "network" {
		t.Errorf("reason %+v", v)
	}
	if !strings.Contains(fin.Summary, "from 10.2.3.XXX") || !strings.Contains(fin.Summary, "404104 network") {
		t.Errorf("summary %q", fin.Summary)
	}
	t.Logf("opened: %s", inc.Summary)
	t.Logf("closed: %s", fin.Summary)
	if got := f.engine.Incidents(0); len(got) != 1 || got[0].State != insight.IncidentClosed || got[0].ID != fin.ID {
		t.Errorf("Incidents() = %+v", got)
	}
}

// A burst of token expiries or clean closes (a fleet renewing at once)
// is no incident; nor is a small drop.
func TestRenewalWaveAndSmallDropAreNoIncident(t *testing.T) {
	f := newFleet(t, insight.Options{})
	cs := fleetOf(f, 1000, func(i int) string { return "10.3.3.XXX" })
	f.after(time.Minute)
	for _, c := range cs {
		c.closeClean()
		f.after(time.Millisecond)
		c.connect()
	}
	f.after(time.Minute)
	for _, c := range cs[:20] { // 2 %: under the 25-device floor
		c.reset()
	}
	f.after(time.Minute)
	f.engine.Tick(f.now)
	if len(f.emitted) != 0 {
		t.Fatalf("records: %+v", f.emitted)
	}
}

// The flap score: reconnects in the last hour, renewals excluded; the
// flappingDevices count follows it both ways.
func TestFlapScoreAndFlappingDevices(t *testing.T) {
	f := newFleet(t, insight.Options{})
	flappy := f.client("flappy", "10.4.4.XXX", nodeSDK, time.Hour, 60)
	steady := f.client("steady", "10.4.5.XXX", nodeSDK, time.Hour, 60)
	steady.connect()
	flappy.connect()
	for range 10 {
		f.after(2 * time.Minute)
		flappy.reset()
		f.after(time.Second)
		flappy.connect()
	}
	if n := f.engine.FlappingDevices(); n != 1 {
		t.Fatalf("flappingDevices = %d, want 1", n)
	}
	top := f.engine.Flapping(20)
	if len(top) != 1 || top[0].DeviceID != "flappy" || top[0].Score != 10 || !top[0].Flapping {
		t.Fatalf("Flapping = %+v", top)
	}
	var on *insight.FlapChange
	for _, r := range f.emitted {
		if r.Kind == insight.KindDeviceFlapping {
			on = r.Flap
		}
	}
	if on == nil || !on.Flapping || on.DeviceID != "flappy" {
		t.Fatalf("no flapping record: %+v", f.emitted)
	}
	// An hour of quiet: the score falls to 0 and the device is stable.
	f.after(61 * time.Minute)
	f.engine.Tick(f.now)
	if n := f.engine.FlappingDevices(); n != 0 {
		t.Fatalf("flappingDevices after an hour = %d", n)
	}
	last := f.emitted[len(f.emitted)-1]
	if last.Kind != insight.KindDeviceFlapping || last.Flap.Flapping {
		t.Fatalf("last record %+v, want the device's return to stable", last)
	}
	if got := f.engine.Flapping(0); len(got) != 0 {
		t.Fatalf("Flapping after an hour = %+v", got)
	}
}

// sameDiagnoses fails unless engines a and b diagnose every device of ids
// alike.
func sameDiagnoses(t *testing.T, when string, ids []string, a, b *insight.Engine) {
	t.Helper()
	for _, id := range ids {
		da, err1 := a.Diagnose(id, time.Time{}, time.Time{})
		db, err2 := b.Diagnose(id, time.Time{}, time.Time{})
		ja, _ := json.Marshal(da)
		jb, _ := json.Marshal(db)
		if err1 != nil || err2 != nil || !bytes.Equal(ja, jb) {
			t.Fatalf("%s, %s differs:\n%s\n%s", when, id, ja, jb)
		}
	}
}

// A saved and loaded engine answers as the original, and goes on the same
// way with the events that follow.
func TestSnapshotRoundTrip(t *testing.T) {
	f := newFleet(t, insight.Options{})
	var ids []string
	for _, h := range histories {
		ids = append(ids, h.build(f))
	}
	var buf bytes.Buffer
	if err := f.engine.Save(&buf); err != nil {
		t.Fatal(err)
	}
	saved := buf.Bytes()
	other := insight.NewEngine(insight.Options{Hub: "test-hub.example"})
	if err := other.Load(bytes.NewReader(saved)); err != nil {
		t.Fatal(err)
	}
	same := func(when string) {
		t.Helper()
		sameDiagnoses(t, when, ids, f.engine, other)
		c1, r1 := f.engine.Positions()
		c2, r2 := other.Positions()
		if c1 != c2 || r1 != r2 {
			t.Fatalf("%s: positions %d/%d vs %d/%d", when, c1, r1, c2, r2)
		}
	}
	same("after loading")
	// The same events applied to both.
	n := len(f.events)
	crashLoop(f)
	for i, ev := range f.events[n:] {
		other.Apply(&ev, uint64(n+i+1))
	}
	same("after more events")
	// Garbage and truncated snapshots are refused, and change nothing.
	for _, bad := range [][]byte{[]byte("not gob"), saved[:len(saved)/2]} {
		if err := other.Load(bytes.NewReader(bad)); !errors.Is(err, insight.ErrSnapshot) {
			t.Fatalf("Load(bad) = %v", err)
		}
	}
	same("after refused loads")
}

// A state saved before a quiet spell (Changes did not move during it),
// loaded and ticked to the spell's end, answers as the engine that ticked
// through it, and goes on the same way: the feed does not save such a
// state again. Events, and ticks while the engine waits for the clock,
// move Changes.
func TestQuietTicksLeaveTheSavedStateCurrent(t *testing.T) {
	f := newFleet(t, insight.Options{})
	var ids []string
	for _, h := range histories {
		ids = append(ids, h.build(f))
	}
	before := f.engine.Changes()
	if !f.engine.Waiting() {
		t.Fatal("the histories leave nothing timed: the test needs an engine that waits for the clock")
	}
	f.after(2 * time.Hour) // flapping ends, incidents close
	f.engine.Tick(f.now)
	if f.engine.Waiting() {
		t.Fatal("still waiting for the clock two hours on")
	}
	if f.engine.Changes() == before {
		t.Fatal("a tick that ran the engine's timers did not count as a change")
	}
	var buf bytes.Buffer
	if err := f.engine.Save(&buf); err != nil {
		t.Fatal(err)
	}
	saved := f.engine.Changes()
	for range 90 {
		f.after(time.Minute)
		f.engine.Tick(f.now)
	}
	if got := f.engine.Changes(); got != saved {
		t.Fatalf("quiet ticks moved Changes %d → %d", saved, got)
	}
	other := insight.NewEngine(insight.Options{Hub: "test-hub.example"})
	if err := other.Load(&buf); err != nil {
		t.Fatal(err)
	}
	other.Tick(f.now)
	same := func(when string) {
		t.Helper()
		sameDiagnoses(t, when, ids, f.engine, other)
		for name, pair := range map[string][2]any{
			"flapping":  {f.engine.Flapping(20), other.Flapping(20)},
			"incidents": {f.engine.Incidents(20), other.Incidents(20)},
			"now":       {f.engine.Now(), other.Now()},
		} {
			ja, _ := json.Marshal(pair[0])
			jb, _ := json.Marshal(pair[1])
			if !bytes.Equal(ja, jb) {
				t.Fatalf("%s, %s differs:\n%s\n%s", when, name, ja, jb)
			}
		}
	}
	same("after the quiet spell")
	// The same events applied to both: a mass drop (an incident), flapping.
	n := len(f.events)
	applied := f.engine.Changes()
	cs := fleetOf(f, 60, func(i int) string { return "10.9.9.XXX" })
	for _, c := range cs {
		c.reset()
	}
	crashLoop(f)
	if f.engine.Changes() == applied {
		t.Fatal("events did not count as changes")
	}
	for i, ev := range f.events[n:] {
		other.Apply(&ev, uint64(n+i+1))
	}
	for range 30 {
		f.after(time.Minute)
		f.engine.Tick(f.now)
		other.Tick(f.now)
	}
	same("after more events")
}

// A window sees only its own span: two days ago the device was fought
// over, today it only renews. Counts older than the last 32 events come
// from the day buckets; the window reports where they begin.
func TestDiagnoseWindows(t *testing.T) {
	f := newFleet(t, insight.Options{})
	id := duplicate(f) // ~22 minutes of takeovers from t0
	fought := f.now
	f.after(48 * time.Hour)
	c := f.client(id, "10.0.1.XXX", nodeSDK, time.Hour, 180)
	c.connect()
	for range 40 {
		f.after(45 * time.Minute)
		c.closeClean()
		f.after(100 * time.Millisecond)
		c.connect()
	}
	now := f.now
	today, err := f.engine.Diagnose(id, now.Add(-24*time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	if today.Status != insight.StatusHealthy || len(today.Verdicts) != 1 || today.Verdicts[0].Cause != insight.CauseTokenRenewal {
		t.Errorf("today: %s %+v", today.Summary, today.Verdicts)
	}
	then, err := f.engine.Diagnose(id, t0.Add(-time.Hour), fought.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(then.Verdicts) == 0 || then.Verdicts[0].Cause != insight.CauseDuplicateIdentity || then.Numbers.Disconnects["takeover"] != 40 {
		t.Errorf("then: %s %+v %+v", then.Summary, then.Numbers, then.Verdicts)
	}
	if !then.CountedFrom.Equal(t0.Truncate(24 * time.Hour)) {
		t.Errorf("counted from %s, want the day's start", then.CountedFrom)
	}
	if _, err := f.engine.Diagnose(id, now.Add(-8*24*time.Hour), now); !errors.Is(err, insight.ErrWindow) {
		t.Errorf("8 days: %v", err)
	}
}

// Waiting: an engine with nothing timed does not need the clock; a
// flapping device or an open incident does, until time settles it.
func TestEngineWaiting(t *testing.T) {
	f := newFleet(t, insight.Options{})
	flappy := f.client("flappy", "10.4.4.XXX", nodeSDK, time.Hour, 60)
	flappy.connect()
	if f.engine.Waiting() {
		t.Fatal("an engine with one connected device waits for the clock")
	}
	for range 10 {
		f.after(2 * time.Minute)
		flappy.reset()
		f.after(time.Second)
		flappy.connect()
	}
	if !f.engine.Waiting() {
		t.Fatal("a flapping device does not make the engine wait for the clock")
	}
	f.after(61 * time.Minute)
	f.engine.Tick(f.now)
	if f.engine.Waiting() {
		t.Fatal("still waiting after the device turned stable")
	}
}
