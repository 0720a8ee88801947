package metrics

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// benchStore holds an hour of seconds like a busy hub's: the gauges every
// second, 20 disconnect series and telemetry.
func benchStore(b *testing.B) (*Store, time.Time) {
	b.Helper()
	clk := &clock{t: t0.Add(time.Hour)}
	s, err := OpenStore(context.Background(), StoreOptions{Path: filepath.Join(b.TempDir(), "h.db"), Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close(context.Background()) })
	for i := range 3600 {
		ts := t0.Add(time.Duration(i) * time.Second)
		s.Tick(ts, []GaugeSample{
			{Metric: ConnectedDevices, Value: 10000}, {Metric: TotalDevices, Value: 12000}, {Metric: EnabledDevices, Value: 11000},
			{Metric: JournalLag, Dims: []string{DimStream, "TETHER_CONN", DimConsumer, "connlog"}},
		})
		for k := range 20 {
			s.Add(Disconnects, ts, 1, DimResultType, fmt.Sprint(400000+k), DimProtocol, "MQTT", DimReason, "network")
		}
		s.Add(TelemetryIngress, ts, 1)
		if i%60 == 59 {
			if err := s.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	}
	return s, t0.Add(time.Hour)
}

// What an alert rule's evaluation costs: one Window over the recent
// seconds (memory only).
func BenchmarkWindow(b *testing.B) {
	s, end := benchStore(b)
	for _, c := range []struct {
		name string
		q    WindowQuery
	}{
		{"connected/1s", WindowQuery{Metric: ConnectedDevices, Aggregation: AggAverage, From: end.Add(-time.Second), To: end}},
		{"connected/1m", WindowQuery{Metric: ConnectedDevices, Aggregation: AggMinimum, From: end.Add(-time.Minute), To: end}},
		{"connected/1h", WindowQuery{Metric: ConnectedDevices, Aggregation: AggMinimum, From: end.Add(-time.Hour), To: end}},
		{"disconnects-split/5m", WindowQuery{Metric: Disconnects, Aggregation: AggTotal, SplitBy: []string{DimResultType},
			From: end.Add(-5 * time.Minute), To: end}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Window(context.Background(), c.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// What counting one journal message costs (Apply with two samples, as a
// refused authentication has).
func BenchmarkApply(b *testing.B) {
	s, end := benchStore(b)
	var seq uint64
	for b.Loop() {
		seq++
		s.Apply("TETHER_CONN", seq, func(add Adder) {
			add(Connects, end, 1, DimResultType, "401003", DimProtocol, "MQTT")
			add(AuthFailures, end, 1, DimReason, "token-expired")
		})
	}
}
