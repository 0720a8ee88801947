package metrics

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// idleGauges are three gauges over 180 s: A never changes, B changes once
// (at 70 s), C (a subscription's) is there for 100 s and then gone.
func idleGauges(i int) []GaugeSample {
	b := 1.0
	if i >= 70 {
		b = 2
	}
	g := []GaugeSample{{Metric: ConnectedDevices, Value: 5}, {Metric: TotalDevices, Value: b}}
	if i < 100 {
		g = append(g, GaugeSample{Metric: SubscriptionLag, Dims: []string{DimSubscription, "x"}, Value: 0.5})
	}
	return g
}

// An idle hub's gauges wait in memory for their write (GaugeEvery), which
// writes a 1 s row only where a value changed or a minute starts; the
// history reads the same from memory, after a restart (the seconds in
// between filled in) and from the minute table.
func TestGaugesWaitForAChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
	clk := &clock{t: t0}
	s, err := OpenStore(context.Background(), StoreOptions{Path: path, Recent: time.Hour, Retention: 24 * time.Hour, GaugeEvery: time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 180 {
		ts := t0.Add(time.Duration(i) * time.Second)
		clk.Set(ts.Add(time.Millisecond))
		s.Tick(ts, idleGauges(i))
		if err := s.FlushDue(ctx); err != nil {
			t.Fatal(err)
		}
		if i == 59 {
			if n := count(t, s.db, `SELECT count(*) FROM ticks`) + count(t, s.db, `SELECT count(*) FROM sec`); n != 0 {
				t.Fatalf("%d rows written in the first minute of unchanged gauges", n)
			}
		}
		if i == 60 && count(t, s.db, `SELECT count(*) FROM ticks WHERE grain = 1`) != 61 { // with the open second
			t.Fatalf("a minute of gauges was not written after a minute")
		}
	}
	type answer struct {
		metric string
		from   time.Time
		agg    Aggregation
	}
	metrics := []string{ConnectedDevices, TotalDevices, SubscriptionLag}
	var qs []answer
	for i := range 181 {
		for _, m := range metrics {
			qs = append(qs, answer{m, t0.Add(time.Duration(i) * time.Second), AggAverage})
		}
	}
	ask := func(s *Store, a answer, width time.Duration) string {
		v := window(t, s, WindowQuery{Metric: a.metric, Aggregation: a.agg, From: a.from, To: a.from.Add(width)})
		return fmt.Sprint(v)
	}
	want := map[answer]string{}
	for _, q := range qs {
		want[q] = ask(s, q, time.Second)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(5 * time.Minute))
	s = openStore(t, path, clk, time.Hour)
	// Rows: each gauge at 0, 60 and 120 s (minute starts; C only at 0 and
	// 60), B at its change, and C's end at 100 s.
	if n, ends := count(t, s.db, `SELECT count(*) FROM sec WHERE count > 0`), count(t, s.db, `SELECT count(*) FROM sec WHERE count = 0`); n != 9 || ends != 1 {
		t.Errorf("1 s rows: %d values and %d ends, want 9 and 1", n, ends)
	}
	for _, q := range qs {
		if got := ask(s, q, time.Second); got != want[q] {
			t.Errorf("%s at %v: after a restart %s, before %s", q.metric, q.from.Sub(t0), got, want[q])
		}
	}
	if got := window(t, s, WindowQuery{Metric: SubscriptionLag, Aggregation: AggAverage, From: t0, To: t0.Add(time.Hour)}); got[0].Samples != 100 {
		t.Errorf("the ended gauge after a restart: %+v", got)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Past Recent the minute rows answer: B averaged over 70 s of 1 and
	// 110 of 2.
	clk.Set(t0.Add(2 * time.Hour))
	s = openStore(t, path, clk, time.Hour)
	got := window(t, s, WindowQuery{Metric: TotalDevices, Aggregation: AggAverage, From: t0, To: t0.Add(time.Hour)})
	if want := (70*1.0 + 110*2) / 180; got[0].Samples != 180 || got[0].Value != want {
		t.Errorf("minute rows: %+v, want %v over 180 samples", got, want)
	}
	got = window(t, s, WindowQuery{Metric: SubscriptionLag, Aggregation: AggCount, From: t0, To: t0.Add(time.Hour)})
	if got[0].Samples != 100 {
		t.Errorf("minute rows of the ended gauge: %+v", got)
	}
}

// Counts and positions are written with the next FlushDue, gauges or
// not.
func TestCountsFlushAtOnce(t *testing.T) {
	clk := &clock{t: t0}
	s := openStore(t, filepath.Join(t.TempDir(), "h.db"), clk, time.Hour)
	s.Tick(t0, idleGauges(0))
	if err := s.FlushDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s.db, `SELECT count(*) FROM ticks`); n != 0 {
		t.Fatalf("gauges alone written at once (%d tick rows)", n)
	}
	s.Apply("TETHER_CONN", 7, func(add Adder) { add(Connects, t0, 1, DimResultType, "success") })
	if err := s.FlushDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s.db, `SELECT count(*) FROM position WHERE seq = 7`); n != 1 {
		t.Errorf("the position was not written with its count")
	}
	if n := count(t, s.db, `SELECT count(*) FROM sec JOIN series ON series.id = sec.series WHERE metric = ?`, Connects); n != 1 {
		t.Errorf("the count was not written")
	}
}
