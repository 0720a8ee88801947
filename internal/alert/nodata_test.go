package alert

import (
	"slices"
	"testing"
	"time"
)

// A fired alert survives the first evaluations after a restart, whose
// windows the sampler has not filled yet, and resolves on real data.
func TestNoDataAfterRestartKeepsFiredAlert(t *testing.T) {
	dir := t.TempDir()
	r := metricRule("low", LessThan, 1)
	r.Aggregation, r.ResolveAfter = Maximum, 1
	e := newEnvIn(t, dir, r)
	e.s.add(e.now.Add(-time.Millisecond), 0)
	e.eval(time.Second)
	fired := e.rec.take()
	if c := conditions(fired); !slices.Equal(c, []string{"Fired"}) {
		t.Fatalf("transitions %v", c)
	}
	e.hist.Close()

	// Restarted a minute later, with an empty metric history.
	e2 := newEnvAt(t, dir, t0.Add(time.Minute), r)
	for range 2 {
		e2.eval(time.Second) // the sampler has not recorded a second yet
	}
	if got := e2.rec.take(); len(got) != 0 {
		t.Fatalf("no data right after a restart gave %v", conditions(got))
	}
	if st := e2.status("low"); st.State != Fired || st.Alerts[0].AlertID != fired[0].ID {
		t.Fatalf("after restart: %+v", st)
	}
	e2.s.add(e2.now.Add(-time.Millisecond), 1) // the device is back
	e2.eval(time.Second)
	if got := e2.rec.take(); len(got) != 1 || got[0].Condition != Resolved || got[0].ID != fired[0].ID {
		t.Fatalf("on data: %v", conditions(got))
	}
}

// A sampler that falls behind (an empty window between two filled ones)
// neither resolves a fired alert nor breaks its resolve count; a series
// gone for longer than NoDataGrace resolves.
func TestNoDataWhileLaggingThenGone(t *testing.T) {
	r := metricRule("low", LessThan, 90)
	r.ResolveAfter = 2
	e := newEnv(t, r)
	e.violate(true)
	e.eval(time.Second)
	if c := conditions(e.rec.take()); !slices.Equal(c, []string{"Fired"}) {
		t.Fatalf("transitions %v", c)
	}
	e.violate(false)
	e.eval(time.Second) // 1 of 2
	e.eval(time.Second) // late sampler: no evidence
	e.violate(true)
	e.eval(time.Second) // the count starts again
	e.violate(false)
	e.eval(time.Second)
	e.eval(time.Second)
	e.eval(time.Second)
	if got := e.rec.take(); len(got) != 0 {
		t.Fatalf("lagging sampler gave %v", conditions(got))
	}
	if st := e.status("low"); st.State != Fired || st.Alerts[0].Value != nil {
		t.Fatalf("state %+v", st)
	}
	// The last window with data ended at t0+4s and was the first of the 2
	// evaluations needed: the evaluations up to t0+9s are no evidence, the
	// one at t0+10s (6 s without data > 5 s grace) is the second.
	var resolved []Alert
	for e.now.Before(t0.Add(20*time.Second)) && len(resolved) == 0 {
		e.eval(time.Second)
		resolved = e.rec.take()
	}
	if len(resolved) != 1 || resolved[0].Condition != Resolved {
		t.Fatalf("gone series: %v", conditions(resolved))
	}
	if want := t0.Add(10 * time.Second); !resolved[0].ResolvedAt.Equal(want) {
		t.Fatalf("resolved at %s, want %s (5 s grace)", resolved[0].ResolvedAt, want)
	}
}
