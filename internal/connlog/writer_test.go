package connlog_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/sqlite"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
)

// eventually polls cond every 10 ms until it holds, failing after within.
func eventually(t *testing.T, within time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %s", within, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func openJournal(t *testing.T) *journal.Journal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := journal.Open(ctx, journal.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	return j
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "logs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startWriter starts a Writer that test cleanup stops (before the store
// and the journal close: cleanups run last-registered first).
func startWriter(t *testing.T, j *journal.Journal, store connlog.LogStore, edit func(*connlog.WriterOptions)) *connlog.Writer {
	t.Helper()
	o := connlog.WriterOptions{JS: j.JS, Store: store, Resource: res, Logger: testLogger(t), MaxWait: 20 * time.Millisecond}
	if edit != nil {
		edit(&o)
	}
	w, err := connlog.NewWriter(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return w
}

func publishEvent(t *testing.T, js jetstream.JetStream, e presence.ConnectionEvent) {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), journal.ConnSubject(e.DeviceID, string(e.Kind)), data, jetstream.WithMsgID(e.ID)); err != nil {
		t.Fatal(err)
	}
}

func publishChange(t *testing.T, js jetstream.JetStream, c registry.Change) {
	t.Helper()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), journal.RegistrySubject(c.DeviceID, string(c.Op)), data, jetstream.WithMsgID(c.ID)); err != nil {
		t.Fatal(err)
	}
}

// timeline makes connection events of n devices, one per second from
// start: connect, keep-alive drop, reconnect, token expiry, reconnect…
func timeline(start time.Time, devices, perDevice int) []presence.ConnectionEvent {
	var out []presence.ConnectionEvent
	i := 0
	for k := range perDevice {
		for d := range devices {
			dev := fmt.Sprintf("dev-%02d", d)
			s := fmt.Sprintf("%064X", k+1)
			e := presence.ConnectionEvent{
				ID: dev + "/" + s, Time: start.Add(time.Duration(i) * time.Second), Hub: "myhub.azure-devices.net",
				DeviceID: dev, Sequence: s, Protocol: "MQTT", MaskedIP: "10.0.0.XXX", SDKVersion: sdk, AuthType: "sas",
			}
			switch k % 4 {
			case 0, 2:
				e.Kind = presence.Connected
			case 1:
				e.Kind, e.Reason, e.Result = presence.Disconnected, presence.ReasonKeepAlive, presence.ResultClosedRemotely
			case 3:
				e.Kind, e.Reason, e.Result = presence.Disconnected, presence.ReasonTokenExpired, presence.ResultUnauthorized
			}
			out = append(out, e)
			i++
		}
	}
	return out
}

func expectedRecords(t *testing.T, events []presence.ConnectionEvent, changes []registry.Change) []connlog.Record {
	var out []connlog.Record
	for _, e := range events {
		rs, err := connlog.FromConnectionEvent(res, e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rs...)
	}
	for _, c := range changes {
		out = append(out, connlog.FromChange(res, c))
	}
	slices.SortStableFunc(out, func(a, b connlog.Record) int { return a.TimeGenerated.Compare(b.TimeGenerated) })
	return out
}

func findAll(t *testing.T, s connlog.LogStore, f connlog.Filter) []connlog.Record {
	t.Helper()
	rs, err := s.Find(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func itemIDs(rs []connlog.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ItemID
	}
	return out
}

func lagIsZero(t *testing.T, w *connlog.Writer) func() (bool, string) {
	return func() (bool, string) {
		lag, err := w.Lag(context.Background())
		return err == nil && lag == 0, fmt.Sprintf("lag %d, err %v", lag, err)
	}
}

func TestWriterEndToEnd(t *testing.T) {
	j := openJournal(t)
	store := openStore(t)
	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	events := timeline(start, 3, 4)
	refused := presence.ConnectionEvent{ID: "refused-1", Kind: presence.Refused, Time: start.Add(30 * time.Second),
		Hub: "myhub.azure-devices.net", Reason: presence.ReasonAuthFailed, Result: presence.ResultUnauthorized,
		Detail: "IotHub 'myhub' does not contain the specified device 'ghost'", Protocol: "MQTT-WS", MaskedIP: "10.9.9.XXX"}
	events = append(events, refused)
	changes := []registry.Change{
		{ID: "chg-1", Op: registry.OpCreated, Time: start.Add(-time.Minute), Hub: "myhub.azure-devices.net", DeviceID: "dev-00",
			Device: registry.Device{DeviceID: "dev-00", Status: registry.Enabled}, Caller: "iothubowner"},
		{ID: "chg-2", Op: registry.OpDeleted, Time: start.Add(40 * time.Second), Hub: "myhub.azure-devices.net", DeviceID: "dev-02",
			Device: registry.Device{DeviceID: "dev-02"}, Caller: "registryReadWrite"},
	}

	// Half the journal exists before the writer starts, half arrives
	// while it runs; one event is published twice (a retried publish).
	for _, e := range events[:6] {
		publishEvent(t, j.JS, e)
	}
	publishEvent(t, j.JS, events[0])
	publishChange(t, j.JS, changes[0])
	if _, err := j.JS.Publish(context.Background(), journal.ConnSubject("dev-99", "connected"), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	w := startWriter(t, j, store, nil)
	for _, e := range events[6:] {
		publishEvent(t, j.JS, e)
	}
	publishChange(t, j.JS, changes[1])

	want := expectedRecords(t, events, changes)
	eventually(t, 10*time.Second, func() (bool, string) {
		got := findAll(t, store, connlog.Filter{})
		return len(got) == len(want), fmt.Sprintf("%d records stored, want %d", len(got), len(want))
	})
	got := findAll(t, store, connlog.Filter{})
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	eventually(t, 5*time.Second, lagIsZero(t, w))
	if w.Processed() != uint64(len(events)+len(changes)) || w.Skipped() != 1 {
		t.Errorf("Processed %d, Skipped %d; want %d and 1", w.Processed(), w.Skipped(), len(events)+len(changes))
	}

	// The token expiry of dev-01 is two Error records, 401003 then 404104.
	errs := findAll(t, store, connlog.Filter{DeviceID: "dev-01", Level: connlog.LevelError})
	var codes []string
	for _, r := range errs {
		codes = append(codes, r.ResultType)
	}
	if want := []string{"404104", "401003", "404104"}; !slices.Equal(codes, want) {
		t.Errorf("dev-01 errors %v, want %v", codes, want)
	}
	if ops := findAll(t, store, connlog.Filter{Category: connlog.CategoryDeviceIdentityOperations}); len(ops) != 2 || ops[0].OperationName != "create" || ops[1].OperationName != "delete" {
		t.Errorf("identity operations: %+v", ops)
	}
}

func TestWriterRestartLosesNothingAndDuplicatesNothing(t *testing.T) {
	j := openJournal(t)
	store := openStore(t)
	events := timeline(time.Now().UTC().Add(-2*time.Hour).Truncate(time.Millisecond), 10, 60)
	first, second := events[:300], events[300:]
	for _, e := range first {
		publishEvent(t, j.JS, e)
	}
	small := func(o *connlog.WriterOptions) { o.BatchSize = 20 }
	w1, err := connlog.NewWriter(connlog.WriterOptions{JS: j.JS, Store: store, Resource: res, Logger: testLogger(t), BatchSize: 20, MaxWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := w1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		return w1.Processed() >= 60, fmt.Sprintf("w1 processed %d", w1.Processed())
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w1.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	stoppedAt := w1.Processed()
	if stoppedAt >= uint64(len(first)) {
		t.Logf("w1 finished the first half before it was stopped (%d)", stoppedAt)
	}
	for _, e := range second {
		publishEvent(t, j.JS, e)
	}
	w2 := startWriter(t, j, store, small)

	want := expectedRecords(t, events, nil)
	eventually(t, 20*time.Second, func() (bool, string) {
		n := len(findAll(t, store, connlog.Filter{}))
		return n >= len(want), fmt.Sprintf("%d records stored, want %d", n, len(want))
	})
	eventually(t, 5*time.Second, lagIsZero(t, w2))
	got := findAll(t, store, connlog.Filter{})
	if !slices.Equal(itemIDs(got), itemIDs(want)) {
		t.Fatalf("after a restart: %d records, want exactly the %d expected, once each", len(got), len(want))
	}
	if total := w1.Processed() + w2.Processed(); total < uint64(len(events)) {
		t.Errorf("w1 %d + w2 %d processed < %d published", w1.Processed(), w2.Processed(), len(events))
	}
}

// crashingStore appends for real, then hangs until its context ends: the
// writer dies between Append and ack.
type crashingStore struct {
	connlog.LogStore
	appended chan struct{}
	once     sync.Once
}

func (s *crashingStore) Append(ctx context.Context, rs []connlog.Record) error {
	if err := s.LogStore.Append(ctx, rs); err != nil {
		return err
	}
	s.once.Do(func() { close(s.appended) })
	<-ctx.Done()
	return ctx.Err()
}

func TestWriterCrashBetweenAppendAndAck(t *testing.T) {
	j := openJournal(t)
	store := openStore(t)
	events := timeline(time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond), 5, 10)
	for _, e := range events {
		publishEvent(t, j.JS, e)
	}
	crash := &crashingStore{LogStore: store, appended: make(chan struct{})}
	w1, err := connlog.NewWriter(connlog.WriterOptions{JS: j.JS, Store: crash, Resource: res, Logger: testLogger(t),
		AckWait: time.Second, MaxWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := w1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-crash.appended:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer never appended")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := w1.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop of a writer stuck in Append: %v, want DeadlineExceeded", err)
	}
	if w1.Processed() != 0 {
		t.Fatalf("w1 acked %d messages it never finished", w1.Processed())
	}

	// The journal redelivers after AckWait; the store skips what it has.
	w2 := startWriter(t, j, store, func(o *connlog.WriterOptions) { o.AckWait = time.Second })
	eventually(t, 15*time.Second, func() (bool, string) {
		return w2.Processed() == uint64(len(events)), fmt.Sprintf("w2 processed %d of %d", w2.Processed(), len(events))
	})
	eventually(t, 5*time.Second, lagIsZero(t, w2))
	want := expectedRecords(t, events, nil)
	if got := findAll(t, store, connlog.Filter{}); !slices.Equal(itemIDs(got), itemIDs(want)) {
		t.Fatalf("after redelivery: %d records, want the %d expected once each", len(got), len(want))
	}
}

// flakyStore fails the first failures Appends; the first failure happens
// after the data was committed (the reply was lost).
type flakyStore struct {
	connlog.LogStore
	failures atomic.Int32
	calls    atomic.Int32
}

func (s *flakyStore) Append(ctx context.Context, rs []connlog.Record) error {
	n := s.calls.Add(1)
	if n == 1 {
		if err := s.LogStore.Append(ctx, rs); err != nil {
			return err
		}
	}
	if n <= s.failures.Load() {
		return fmt.Errorf("flaky store: failure %d", n)
	}
	return s.LogStore.Append(ctx, rs)
}

func TestWriterRetriesFailedAppend(t *testing.T) {
	j := openJournal(t)
	store := openStore(t)
	events := timeline(time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond), 3, 10)
	for _, e := range events {
		publishEvent(t, j.JS, e)
	}
	flaky := &flakyStore{LogStore: store}
	flaky.failures.Store(3)
	w := startWriter(t, j, flaky, func(o *connlog.WriterOptions) { o.Retention = -1 })
	eventually(t, 10*time.Second, func() (bool, string) {
		return w.Processed() == uint64(len(events)), fmt.Sprintf("processed %d of %d after %d appends", w.Processed(), len(events), flaky.calls.Load())
	})
	want := expectedRecords(t, events, nil)
	if got := findAll(t, store, connlog.Filter{}); !slices.Equal(itemIDs(got), itemIDs(want)) {
		t.Fatalf("after retries: %d records, want the %d expected once each", len(got), len(want))
	}
	if flaky.calls.Load() < 4 {
		t.Errorf("only %d Append calls; the failures were not retried", flaky.calls.Load())
	}
}

func TestWriterRetention(t *testing.T) {
	j := openJournal(t)
	store := openStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	old := presence.ConnectionEvent{ID: "old/1", Kind: presence.Connected, Time: now.AddDate(0, 0, -31), DeviceID: "old", Sequence: "1"}
	recent := presence.ConnectionEvent{ID: "new/1", Kind: presence.Connected, Time: now.AddDate(0, 0, -29), DeviceID: "new", Sequence: "1"}
	publishEvent(t, j.JS, old)
	publishEvent(t, j.JS, recent)
	w := startWriter(t, j, store, func(o *connlog.WriterOptions) { o.RetentionEvery = 20 * time.Millisecond })
	eventually(t, 10*time.Second, func() (bool, string) {
		return w.Processed() == 2, fmt.Sprintf("processed %d", w.Processed())
	})
	eventually(t, 10*time.Second, func() (bool, string) {
		got := findAll(t, store, connlog.Filter{})
		return len(got) == 1 && got[0].DeviceID == "new", fmt.Sprintf("records %v", itemIDs(got))
	})
}

func TestWriterLifecycle(t *testing.T) {
	j := openJournal(t)
	store := openStore(t)
	if _, err := connlog.NewWriter(connlog.WriterOptions{Store: store}); err == nil {
		t.Error("NewWriter without JetStream succeeded")
	}
	w, err := connlog.NewWriter(connlog.WriterOptions{JS: j.JS, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := w.Stop(ctx); err != nil {
		t.Errorf("Stop before Start: %v", err)
	}
	if _, err := w.Lag(ctx); err == nil {
		t.Error("Lag before Start succeeded")
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err == nil {
		t.Error("second Start succeeded")
	}
	began := time.Now()
	if err := w.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("Stop of an idle writer took %s", d)
	}
	if err := w.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	// A stopped writer starts again on the same durable consumers.
	if err := w.Start(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := w.Stop(ctx); err != nil {
		t.Errorf("Stop after restart: %v", err)
	}
}

// hangingStore never stores: Append waits for its context to end. The
// writer dies with a batch fetched but not stored.
type hangingStore struct {
	connlog.LogStore
	called chan struct{}
	once   sync.Once
}

func (s *hangingStore) Append(ctx context.Context, rs []connlog.Record) error {
	s.once.Do(func() { close(s.called) })
	<-ctx.Done()
	return ctx.Err()
}

// TestWriterCrashBeforeAppend: a writer dies with a batch fetched but
// not stored, and newer messages arrive. The next writer must store the
// old batch too: its ack of a newer message acks all earlier ones, so it
// may not ack past the batch before the batch is stored.
func TestWriterCrashBeforeAppend(t *testing.T) {
	j := openJournal(t)
	store := openStore(t)
	events := timeline(time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond), 5, 10)
	first, second := events[:20], events[20:]
	for _, e := range first {
		publishEvent(t, j.JS, e)
	}
	hang := &hangingStore{LogStore: store, called: make(chan struct{})}
	// AckWait is long: the test must not pass by waiting for a redelivery.
	w1, err := connlog.NewWriter(connlog.WriterOptions{JS: j.JS, Store: hang, Resource: res, Logger: testLogger(t),
		AckWait: time.Minute, MaxWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := w1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-hang.called:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer never appended")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := w1.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop of a writer stuck in Append: %v, want DeadlineExceeded", err)
	}
	for _, e := range second {
		publishEvent(t, j.JS, e)
	}

	w2 := startWriter(t, j, store, func(o *connlog.WriterOptions) { o.AckWait = time.Minute })
	eventually(t, 10*time.Second, lagIsZero(t, w2))
	want := expectedRecords(t, events, nil)
	if got := findAll(t, store, connlog.Filter{}); !slices.Equal(itemIDs(got), itemIDs(want)) {
		t.Fatalf("after a crash before the append: %d records, want the %d expected once each", len(got), len(want))
	}
}

// TestWriterTakesOverExplicitAckConsumer: the durable consumer of an
// older Tether acks explicitly and holds delivered-unacked messages;
// JetStream cannot switch it to AckAll. The writer replaces it, loses
// nothing and stores nothing twice.
func TestWriterTakesOverExplicitAckConsumer(t *testing.T) {
	j := openJournal(t)
	store := openStore(t)
	events := timeline(time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond), 4, 10)
	for _, e := range events {
		publishEvent(t, j.JS, e)
	}
	ctx := context.Background()
	for _, stream := range []string{journal.StreamConn, journal.StreamRegistry} {
		cons, err := j.JS.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
			Durable: connlog.DefaultDurable, DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute,
		})
		if err != nil {
			t.Fatal(err)
		}
		if stream != journal.StreamConn {
			continue
		}
		// The old writer stored and acked 10 messages, then fetched 10
		// more and died.
		batch, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var stored []presence.ConnectionEvent
		for m := range batch.Messages() {
			var e presence.ConnectionEvent
			if err := json.Unmarshal(m.Data(), &e); err != nil {
				t.Fatal(err)
			}
			stored = append(stored, e)
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := store.Append(ctx, expectedRecords(t, stored, nil)); err != nil {
			t.Fatal(err)
		}
		if _, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second)); err != nil {
			t.Fatal(err)
		}
	}

	w := startWriter(t, j, store, func(o *connlog.WriterOptions) { o.AckWait = time.Minute })
	eventually(t, 10*time.Second, lagIsZero(t, w))
	want := expectedRecords(t, events, nil)
	if got := findAll(t, store, connlog.Filter{}); !slices.Equal(itemIDs(got), itemIDs(want)) {
		t.Fatalf("after taking over: %d records, want the %d expected once each", len(got), len(want))
	}
	for _, stream := range []string{journal.StreamConn, journal.StreamRegistry} {
		cons, err := j.JS.Consumer(ctx, stream, connlog.DefaultDurable)
		if err != nil {
			t.Fatal(err)
		}
		if p := cons.CachedInfo().Config.AckPolicy; p != jetstream.AckAllPolicy {
			t.Errorf("consumer on %s acks %s, want all", stream, p)
		}
	}
}

// TestWriterAcksUndecodableAlone: a batch of nothing but undecodable
// messages is acked too, so it is never delivered again.
func TestWriterAcksUndecodableAlone(t *testing.T) {
	j := openJournal(t)
	store := openStore(t)
	for range 3 {
		if _, err := j.JS.Publish(context.Background(), journal.ConnSubject("dev-99", "connected"), []byte("{not json")); err != nil {
			t.Fatal(err)
		}
	}
	w := startWriter(t, j, store, nil)
	eventually(t, 10*time.Second, lagIsZero(t, w))
	if w.Skipped() != 3 || w.Processed() != 0 {
		t.Errorf("Skipped %d, Processed %d; want 3 and 0", w.Skipped(), w.Processed())
	}
}
