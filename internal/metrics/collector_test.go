package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
)

func openJournal(t *testing.T, dir string) *journal.Journal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := journal.Open(ctx, journal.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	return j
}

func publishConn(t *testing.T, j *journal.Journal, ev presence.ConnectionEvent) {
	t.Helper()
	b, _ := json.Marshal(ev)
	if _, err := j.JS.Publish(context.Background(), journal.ConnSubject(ev.DeviceID, string(ev.Kind)), b); err != nil {
		t.Fatal(err)
	}
}

func publishTelemetry(t *testing.T, j *journal.Journal, dev string, at time.Time) {
	t.Helper()
	m := nats.NewMsg(journal.TelemetrySubject(dev))
	m.Header.Set(journal.HeaderEnqueuedTime, at.Format(time.RFC3339Nano))
	m.Data = []byte("payload that the collector never fetches")
	if _, err := j.JS.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func total(t *testing.T, s *Store, metric string, from time.Time, dims ...string) map[string]float64 {
	t.Helper()
	vals, err := s.Window(context.Background(), WindowQuery{Metric: metric, Aggregation: AggTotal, SplitBy: dims, From: from, To: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, v := range vals {
		k := ""
		for _, d := range dims {
			k += v.Dimensions[d] + "/"
		}
		out[k] = v.Value
	}
	return out
}

func startCollector(t *testing.T, j *journal.Journal, s *Store) *Collector {
	t.Helper()
	c, err := NewCollector(CollectorOptions{JS: j.JS, Store: s, Devices: func() (int, int) { return 5, 4 }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

// The collector reads a journal written before it started: the connected
// set is whole when Start returns, the counts land in the seconds of the
// events' times, telemetry is counted from headers. A history kept across
// a new journal (sequences from 1 again) counts the new journal from its
// start instead of skipping it.
func TestCollectorFromJournal(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, filepath.Join(dir, "j1"))
	at := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	for i, dev := range []string{"d1", "d2", "d.3"} {
		publishConn(t, j, presence.ConnectionEvent{ID: dev + "/1", Kind: presence.Connected, DeviceID: dev, Time: at.Add(time.Duration(i) * time.Second), Protocol: "MQTT",
			TokenRenewal: dev == "d.3"})
	}
	publishConn(t, j, presence.ConnectionEvent{ID: "d2/2", Kind: presence.Disconnected, DeviceID: "d2", Time: at.Add(5 * time.Second),
		Protocol: "MQTT-WS", Reason: presence.ReasonKeepAlive, Result: presence.ResultClosedRemotely})
	publishConn(t, j, presence.ConnectionEvent{ID: "r1", Kind: presence.Refused, DeviceID: "d4", Time: at.Add(6 * time.Second),
		Reason: presence.ReasonAuthFailed, Result: presence.ResultUnauthorized, Detail: "SAS token expired at 2026-01-01T00:00:00Z"})
	publishTelemetry(t, j, "d1", at.Add(7*time.Second))
	publishTelemetry(t, j, "d1", at.Add(7*time.Second))

	path := filepath.Join(dir, "h.db")
	s, err := OpenStore(context.Background(), StoreOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	c := startCollector(t, j, s)
	if n := c.Connected(); n != 2 {
		t.Errorf("connected right after Start: %d, want 2", n)
	}
	eventually(t, func() error {
		got := total(t, s, Connects, at, DimResultType, DimProtocol)
		if got["Success/MQTT/"] != 3 || got["401003/Unknown/"] != 1 {
			return fmt.Errorf("connects %v", got)
		}
		// d.3's connect renewed its token; the refusal is never a renewal.
		if got := total(t, s, Connects, at, DimTokenRenewal); got["true/"] != 1 || got["false/"] != 3 {
			return fmt.Errorf("connects by TokenRenewal %v", got)
		}
		if got := total(t, s, Disconnects, at, DimResultType, DimProtocol, DimReason); got["404104/MQTT-WS/keep-alive/"] != 1 {
			return fmt.Errorf("disconnects %v", got)
		}
		if got := total(t, s, AuthFailures, at, DimReason); got["token-expired/"] != 1 {
			return fmt.Errorf("auth failures %v", got)
		}
		if got := total(t, s, TelemetryIngress, at); got[""] != 2 {
			return fmt.Errorf("telemetry %v", got)
		}
		return nil
	})
	// Counted in the second of the event, ten minutes ago.
	if got := total(t, s, Disconnects, at.Add(5*time.Second).Add(-time.Nanosecond)); got[""] != 1 {
		t.Errorf("disconnect not in its second: %v", got)
	}
	c.Sample(time.Now())
	vals, _ := s.Window(context.Background(), WindowQuery{Metric: EnabledDevices, Aggregation: AggMaximum, From: time.Now().Add(-time.Minute), To: time.Now().Add(time.Second)})
	if vals[0].Value != 4 {
		t.Errorf("enabledDeviceCount %+v", vals)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A new journal (sequence 1 again) under the kept history.
	j2 := openJournal(t, filepath.Join(dir, "j2"))
	publishConn(t, j2, presence.ConnectionEvent{ID: "d9/1", Kind: presence.Connected, DeviceID: "d9", Time: at.Add(30 * time.Second), Protocol: "MQTT"})
	s, err = OpenStore(context.Background(), StoreOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	startCollector(t, j2, s)
	eventually(t, func() error {
		if got := total(t, s, Connects, at, DimResultType); got["Success/"] != 4 {
			return fmt.Errorf("connects after a new journal: %v", got)
		}
		return nil
	})
}

// An idle hub's sampler wakes once a second (it used to take the
// connected count every Refresh, changed or not); a change of the count
// still reaches the newest second.
func TestSamplerWakesOnChangeOnly(t *testing.T) {
	j, s := openJournalAndStore(t)
	c := startCollector(t, j, s)
	n0 := c.samples.Load()
	time.Sleep(2500 * time.Millisecond)
	if n := c.samples.Load() - n0; n > 4 {
		t.Errorf("idle sampler woke %d times in 2.5 s, want at most 4 (one a second)", n)
	}
	publishConn(t, j, presence.ConnectionEvent{ID: "d1/1", Kind: presence.Connected, DeviceID: "d1", Time: time.Now(), Protocol: "MQTT"})
	eventually(t, func() error {
		vals, err := s.Window(context.Background(), WindowQuery{Metric: ConnectedDevices, Aggregation: AggMaximum,
			From: time.Now().Add(-2 * time.Second), To: time.Now().Add(time.Second)})
		if err != nil {
			return err
		}
		if len(vals) == 0 || vals[0].Value != 1 {
			return fmt.Errorf("connectedDeviceCount %+v, want 1", vals)
		}
		return nil
	})
}

// The consumers' lag is asked for every LagEvery while the journal is in
// use or some lag remains, and not while both are idle; a new message
// makes the next second ask again.
func TestLagPolledWhileJournalBusyOnly(t *testing.T) {
	j, s := openJournalAndStore(t)
	ctx := context.Background()
	if _, err := j.JS.CreateOrUpdateConsumer(ctx, journal.StreamConn, jetstream.ConsumerConfig{Durable: "slow", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	c, err := NewCollector(CollectorOptions{JS: j.JS, Store: s, LagEvery: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	slowLag := func() float64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.lags[[2]string{journal.StreamConn, "slow"}]
	}
	publishConn(t, j, presence.ConnectionEvent{ID: "d1/1", Kind: presence.Connected, DeviceID: "d1", Time: time.Now(), Protocol: "MQTT"})
	eventually(t, func() error {
		if v := slowLag(); v != 1 {
			return fmt.Errorf("lag of the durable consumer %v, want 1 (%d polls)", v, c.lagPolls.Load())
		}
		return nil
	})
	// Some lag remains: asked for every second.
	n0 := c.lagPolls.Load()
	time.Sleep(2500 * time.Millisecond)
	if n := c.lagPolls.Load() - n0; n < 2 {
		t.Errorf("lag asked for %d times in 2.5 s while a consumer lagged, want every second", n)
	}
	if err := j.JS.DeleteConsumer(ctx, journal.StreamConn, "slow"); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if _, ok := c.lags[[2]string{journal.StreamConn, "slow"}]; ok {
			return fmt.Errorf("deleted consumer still has a lag")
		}
		return nil
	})
	// No lag and no message: not asked for again.
	n0 = c.lagPolls.Load()
	time.Sleep(2500 * time.Millisecond)
	if n := c.lagPolls.Load() - n0; n != 0 {
		t.Errorf("lag asked for %d times in 2.5 s of an idle journal, want 0", n)
	}
	if _, err := j.JS.CreateOrUpdateConsumer(ctx, journal.StreamConn, jetstream.ConsumerConfig{Durable: "slow2", AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverNewPolicy}); err != nil {
		t.Fatal(err)
	}
	publishConn(t, j, presence.ConnectionEvent{ID: "d2/1", Kind: presence.Connected, DeviceID: "d2", Time: time.Now(), Protocol: "MQTT"})
	eventually(t, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if v := c.lags[[2]string{journal.StreamConn, "slow2"}]; v != 1 {
			return fmt.Errorf("lag after a new message %v, want 1", v)
		}
		return nil
	})
}

// openJournalAndStore opens a journal and a history in a test's own
// directory.
func openJournalAndStore(t *testing.T) (*journal.Journal, *Store) {
	t.Helper()
	dir := t.TempDir()
	j := openJournal(t, filepath.Join(dir, "j"))
	s, err := OpenStore(context.Background(), StoreOptions{Path: filepath.Join(dir, "h.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return j, s
}

// Delivery latencies land in their own subscription's and event type's
// series, in the Store and on the histogram, however many share a
// subscription or an event type (the series are kept per pair).
func TestObserveDeliveryPerSeries(t *testing.T) {
	j := openJournal(t, t.TempDir())
	s, err := OpenStore(context.Background(), StoreOptions{Path: filepath.Join(t.TempDir(), "h.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	c := startCollector(t, j, s)
	from := time.Now().Add(-time.Minute)
	const conn, disc = "Microsoft.Devices.DeviceConnected", "Microsoft.Devices.DeviceDisconnected"
	for _, o := range []struct {
		sub, typ string
		ms       int
	}{{"a", conn, 10}, {"a", conn, 30}, {"a", disc, 5}, {"b", conn, 7}, {"a", conn, 20}} {
		c.ObserveDelivery(o.sub, o.typ, time.Duration(o.ms)*time.Millisecond)
	}
	for agg, want := range map[Aggregation]map[string]float64{
		AggCount:   {"a/" + conn + "/": 3, "a/" + disc + "/": 1, "b/" + conn + "/": 1},
		AggMaximum: {"a/" + conn + "/": 30, "a/" + disc + "/": 5, "b/" + conn + "/": 7},
	} {
		vals, err := s.Window(context.Background(), WindowQuery{Metric: DeliveryLatency, Aggregation: agg,
			SplitBy: []string{DimSubscription, DimEventType}, From: from, To: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, v := range vals {
			got[v.Dimensions[DimSubscription]+"/"+v.Dimensions[DimEventType]+"/"] = v.Value
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v", agg, got, want)
		}
	}
	fams, err := c.prom.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	hist := map[string]string{}
	for _, f := range fams {
		if f.GetName() != "tether_event_delivery_latency_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			k := ""
			for _, l := range m.GetLabel() {
				k += l.GetValue() + "/"
			}
			hist[k] = fmt.Sprintf("%d %.3f", m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum())
		}
	}
	want := map[string]string{conn + "/a/": "3 0.060", disc + "/a/": "1 0.005", conn + "/b/": "1 0.007"}
	if fmt.Sprint(hist) != fmt.Sprint(want) {
		t.Errorf("histograms (count, sum in s) %v, want %v", hist, want)
	}
}
