package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func openStore(t *testing.T, path string, clk *clock, recent time.Duration) *Store {
	t.Helper()
	s, err := OpenStore(context.Background(), StoreOptions{Path: path, Recent: recent, Retention: 24 * time.Hour, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func window(t *testing.T, s *Store, q WindowQuery) []WindowValue {
	t.Helper()
	v, err := s.Window(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWindowGaugeAggregations(t *testing.T) {
	clk := &clock{t: t0}
	s := openStore(t, filepath.Join(t.TempDir(), "h.db"), clk, time.Hour)
	// connected: 100 for 10 s, then 80 for 5 s.
	for i := range 15 {
		v := 100.0
		if i >= 10 {
			v = 80
		}
		s.Tick(t0.Add(time.Duration(i)*time.Second), []GaugeSample{{Metric: ConnectedDevices, Value: v}})
	}
	q := WindowQuery{Metric: "connectedDeviceCount", From: t0, To: t0.Add(15 * time.Second)}
	for agg, want := range map[Aggregation]float64{AggAverage: (100*10 + 80*5) / 15.0, AggMinimum: 80, AggMaximum: 100, AggCount: 15} {
		q.Aggregation = agg
		got := window(t, s, q)
		if len(got) != 1 || got[0].Value != want || got[0].Samples != 15 {
			t.Errorf("%s = %+v, want %v from 15 samples", agg, got, want)
		}
	}
	// The last second alone, and a window with sub-second edges: the
	// sample of second S is at S.
	q.Aggregation, q.From, q.To = AggAverage, t0.Add(13500*time.Millisecond), t0.Add(14500*time.Millisecond)
	if got := window(t, s, q); got[0].Value != 80 || got[0].Samples != 1 {
		t.Errorf("last second: %+v", got)
	}
	// No data.
	q.From, q.To = t0.Add(time.Hour), t0.Add(2*time.Hour)
	if got := window(t, s, q); len(got) != 1 || got[0].Samples != 0 {
		t.Errorf("empty window: %+v", got)
	}
}

func TestWindowCounterSplitFilter(t *testing.T) {
	clk := &clock{t: t0}
	s := openStore(t, filepath.Join(t.TempDir(), "h.db"), clk, time.Hour)
	for i := range 10 {
		s.Tick(t0.Add(time.Duration(i)*time.Second), nil)
	}
	for i := range 6 {
		rt := "404104"
		if i%3 == 0 {
			rt = "400027"
		}
		s.Add(Disconnects, t0.Add(time.Duration(i)*time.Second), 1, DimResultType, rt, DimProtocol, "MQTT", DimReason, "network")
	}
	base := WindowQuery{Metric: Disconnects, Aggregation: AggTotal, From: t0, To: t0.Add(10 * time.Second)}
	if got := window(t, s, base); len(got) != 1 || got[0].Value != 6 || got[0].Samples != 10 {
		t.Errorf("total: %+v", got)
	}
	q := base
	q.SplitBy = []string{"resulttype"} // case-insensitive, as Azure
	got := window(t, s, q)
	if len(got) != 2 || got[0].Dimensions[DimResultType] != "400027" || got[0].Value != 2 || got[1].Value != 4 {
		t.Errorf("split: %+v", got)
	}
	q.Filter = map[string][]string{"ResultType": {"404104", "401003"}}
	got = window(t, s, q)
	if len(got) != 2 || got[0].Dimensions[DimResultType] != "401003" || got[0].Value != 0 || got[0].Samples != 10 ||
		got[1].Value != 4 {
		t.Errorf("split with filter (a filtered value without events shows as 0): %+v", got)
	}
	// A window with no events is a 0 with data, not "no data".
	q = base
	q.From, q.To = t0.Add(8*time.Second), t0.Add(10*time.Second)
	if got := window(t, s, q); got[0].Value != 0 || got[0].Samples != 2 {
		t.Errorf("quiet window: %+v", got)
	}
}

func TestWindowErrors(t *testing.T) {
	clk := &clock{t: t0}
	s := openStore(t, filepath.Join(t.TempDir(), "h.db"), clk, time.Hour)
	for _, c := range []struct {
		q    WindowQuery
		err  error
		text string
	}{
		{WindowQuery{Metric: "nope", Aggregation: AggTotal}, ErrUnknownMetric, "connectedDeviceCount, totalDeviceCount"},
		{WindowQuery{Metric: ConnectedDevices, Aggregation: "Median"}, ErrUnknownAggregation, "Average, Minimum, Maximum, Total, Count"},
		{WindowQuery{Metric: ConnectedDevices, Aggregation: AggTotal}, ErrUnsupportedAggregation, "allows Average, Count, Maximum, Minimum"},
		{WindowQuery{Metric: Connects, Aggregation: AggTotal, SplitBy: []string{"Color"}}, ErrUnknownDimension, "its dimensions: ResultType, Protocol"},
		{WindowQuery{Metric: ConnectedDevices, Aggregation: AggAverage, Filter: map[string][]string{"x": {"y"}}}, ErrUnknownDimension, "its dimensions: none"},
		{WindowQuery{Metric: ConnectedDevices, Aggregation: AggAverage, From: t0, To: t0}, ErrInvalidQuery, "From must be before To"},
	} {
		if c.q.To.IsZero() && c.err != ErrInvalidQuery {
			c.q.From, c.q.To = t0, t0.Add(time.Second)
		}
		_, err := s.Window(context.Background(), c.q)
		if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%+v: err %v, want %v containing %q", c.q, err, c.err, c.text)
		}
	}
}

// The history survives a restart: recent seconds from the 1 s table,
// older windows from the 1 min table, positions with the counts.
func TestStorePersistsAndRetains(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
	clk := &clock{t: t0}
	s, err := OpenStore(context.Background(), StoreOptions{Path: path, Recent: 10 * time.Minute, Retention: time.Hour, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 180 { // three minutes: 1, 2, 3 connected; telemetry 2 a second
		ts := t0.Add(time.Duration(i) * time.Second)
		s.Tick(ts, []GaugeSample{{Metric: ConnectedDevices, Value: float64(i/60 + 1)}})
		s.Apply("TETHER_TELEMETRY", uint64(2*i+2), func(add Adder) {
			add(TelemetryIngress, ts, 1)
			add(TelemetryIngress, ts, 1)
		})
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Reopen 5 minutes later: everything still within Recent.
	clk.Set(t0.Add(5 * time.Minute))
	s = openStore(t, path, clk, 10*time.Minute)
	if p := s.Position("TETHER_TELEMETRY"); p != 360 {
		t.Errorf("position %d, want 360", p)
	}
	got := window(t, s, WindowQuery{Metric: TelemetryIngress, Aggregation: AggTotal, From: t0.Add(30 * time.Second), To: t0.Add(90 * time.Second)})
	if got[0].Value != 120 || got[0].Samples != 60 {
		t.Errorf("after restart, 1 s grain: %+v", got)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Reopen 30 minutes later: past Recent, the minute rows answer (a
	// window starting mid-minute takes the minutes starting in it).
	clk.Set(t0.Add(30 * time.Minute))
	s = openStore(t, path, clk, 10*time.Minute)
	got = window(t, s, WindowQuery{Metric: TelemetryIngress, Aggregation: AggTotal, From: t0.Add(30 * time.Second), To: t0.Add(3 * time.Minute)})
	if got[0].Value != 240 || got[0].Samples != 120 {
		t.Errorf("1 min grain: %+v", got)
	}
	got = window(t, s, WindowQuery{Metric: ConnectedDevices, Aggregation: AggMaximum, From: t0, To: t0.Add(time.Hour)})
	if got[0].Value != 3 || got[0].Samples != 180 {
		t.Errorf("gauge, 1 min grain: %+v", got)
	}
	got = window(t, s, WindowQuery{Metric: ConnectedDevices, Aggregation: AggAverage, From: t0, To: t0.Add(time.Hour)})
	if got[0].Value != 2 {
		t.Errorf("gauge average, 1 min grain: %+v", got)
	}

	// A day later the retention (openStore: 24 h) has dropped it.
	clk.Set(t0.Add(25 * time.Hour))
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got = window(t, s, WindowQuery{Metric: TelemetryIngress, Aggregation: AggTotal, From: t0, To: t0.Add(time.Hour)})
	if got[0].Value != 0 || got[0].Samples != 0 {
		t.Errorf("after retention: %+v", got)
	}
}

// Within a second, a later Tick replaces the gauge (the sample of a
// second is the last value taken in it); the second is written once.
func TestTickRefreshesOpenSecond(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
	clk := &clock{t: t0}
	s := openStore(t, path, clk, time.Hour)
	s.Tick(t0, []GaugeSample{{Metric: ConnectedDevices, Value: 100}})
	s.Tick(t0.Add(300*time.Millisecond), []GaugeSample{{Metric: ConnectedDevices, Value: 90}})
	q := WindowQuery{Metric: ConnectedDevices, Aggregation: AggAverage, From: t0.Add(-500 * time.Millisecond), To: t0.Add(500 * time.Millisecond)}
	if got := window(t, s, q); got[0].Value != 90 || got[0].Samples != 1 {
		t.Errorf("open second: %+v", got)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Tick(t0.Add(800*time.Millisecond), []GaugeSample{{Metric: ConnectedDevices, Value: 80}})
	s.Tick(t0.Add(time.Second), []GaugeSample{{Metric: ConnectedDevices, Value: 70}})
	if s.Tick(t0.Add(-time.Second), nil) {
		t.Error("a tick in an earlier second was taken")
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, clk, time.Hour)
	q.To = t0.Add(2 * time.Second)
	if got := window(t, s, q); got[0].Value != 75 || got[0].Samples != 2 {
		t.Errorf("after reopening: %+v, want the average of 80 and 70 from 2 samples", got)
	}
}

// The catalog names every family the collector registers on /metrics,
// and nothing else.
func TestCatalogMatchesPrometheus(t *testing.T) {
	p := newPromMetrics(func() float64 { return 0 })
	ch := make(chan *prometheus.Desc, 1000)
	p.reg.Describe(ch)
	close(ch)
	re := regexp.MustCompile(`fqName: "(tether_[a-z0-9_]+)"`)
	registered := map[string]bool{}
	for d := range ch {
		if m := re.FindStringSubmatch(d.String()); m != nil {
			registered[m[1]] = true
		}
	}
	inCatalog := map[string]bool{}
	for _, def := range Catalog {
		name, _, _ := strings.Cut(def.Prometheus, "{")
		inCatalog[name] = true
		if !registered[name] {
			t.Errorf("catalog %s → %s is not registered", def.Name, name)
		}
	}
	for name := range registered {
		if !inCatalog[name] {
			t.Errorf("%s is registered but not in the catalog", name)
		}
	}
}

// Windows agree with a brute-force computation over the recorded values,
// whatever mix of whole minutes (merged) and seconds they span, with
// gauges refreshed within seconds and late counter events.
func TestWindowMatchesBruteForce(t *testing.T) {
	clk := &clock{t: t0}
	path := filepath.Join(t.TempDir(), "h.db")
	s := openStore(t, path, clk, time.Hour)
	rnd := rand.New(rand.NewPCG(1, 2))
	const n = 400
	gauge := make([]float64, n)
	events := make([]float64, n)
	for i := range n {
		ts := t0.Add(time.Duration(i) * time.Second)
		for r := range 3 { // refreshed: the last value counts
			gauge[i] = float64(rnd.IntN(100))
			s.Tick(ts.Add(time.Duration(r)*100*time.Millisecond), []GaugeSample{{Metric: ConnectedDevices, Value: gauge[i]}})
		}
		for range rnd.IntN(3) {
			late := max(0, i-rnd.IntN(90)) // events may arrive up to 90 s late
			s.Add(TelemetryIngress, t0.Add(time.Duration(late)*time.Second), 1)
			events[late]++
		}
		if i%97 == 0 {
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func() {
		for range 300 {
			a := rnd.IntN(n)
			b := a + 1 + rnd.IntN(n-a)
			from, to := t0.Add(time.Duration(a)*time.Second), t0.Add(time.Duration(b)*time.Second)
			wantMin, wantMax, sum, tot := 1e9, -1.0, 0.0, 0.0
			for i := a; i < b; i++ {
				wantMin, wantMax, sum = min(wantMin, gauge[i]), max(wantMax, gauge[i]), sum+gauge[i]
				tot += events[i]
			}
			for agg, want := range map[Aggregation]float64{AggMinimum: wantMin, AggMaximum: wantMax, AggAverage: sum / float64(b-a), AggCount: float64(b - a)} {
				got := window(t, s, WindowQuery{Metric: ConnectedDevices, Aggregation: agg, From: from, To: to})
				if math.Abs(got[0].Value-want) > 1e-9 || got[0].Samples != b-a {
					t.Fatalf("[%d, %d) %s: %+v, want %v from %d samples", a, b, agg, got, want, b-a)
				}
			}
			got := window(t, s, WindowQuery{Metric: TelemetryIngress, Aggregation: AggTotal, From: from, To: to})
			if got[0].Value != tot || got[0].Samples != b-a {
				t.Fatalf("[%d, %d) Total: %+v, want %v", a, b, got, tot)
			}
		}
	}
	check()
	// The same from the file (seconds and their minutes loaded back).
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, clk, time.Hour)
	check()
}

// A write that fails halfway leaves no trace: series rows it made (and
// rolled back) are not remembered, so the next write labels every row
// with its own series.
func TestFailedFlushForgetsItsSeries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
	clk := &clock{t: t0}
	s := openStore(t, path, clk, time.Hour)
	// Ten series that insert, one whose series row the database refuses.
	for i := range 10 {
		s.Add(Connects, t0, float64(i+1), DimResultType, fmt.Sprint(400000+i), DimProtocol, "MQTT")
	}
	s.Add(AuthFailures, t0, 100, DimReason, "bad-signature")
	if _, err := s.db.Exec(`CREATE TRIGGER refuse BEFORE INSERT ON series WHEN NEW.metric = 'deviceAuthFailures'
		BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err == nil {
		t.Fatal("the flush succeeded")
	}
	if _, err := s.db.Exec(`DROP TRIGGER refuse`); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(2 * time.Hour)) // past Recent: read back from the minute table
	s = openStore(t, path, clk, time.Hour)
	got := window(t, s, WindowQuery{Metric: Connects, Aggregation: AggTotal, SplitBy: []string{DimResultType}, From: t0, To: t0.Add(time.Minute)})
	if len(got) != 10 {
		t.Fatalf("connects: %+v", got)
	}
	for i, v := range got {
		if v.Dimensions[DimResultType] != fmt.Sprint(400000+i) || v.Value != float64(i+1) {
			t.Errorf("series %d: %+v", i, v)
		}
	}
	if got := window(t, s, WindowQuery{Metric: AuthFailures, Aggregation: AggTotal, From: t0, To: t0.Add(time.Minute)}); got[0].Value != 100 {
		t.Errorf("auth failures: %+v", got)
	}
}
