// Package logstoretest is the contract every connlog.LogStore passes: run
// it from the adapter's tests with
//
//	func TestContract(t *testing.T) { logstoretest.Run(t, newStore) }
//
// Records makes realistic records for tests and benchmarks.
package logstoretest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/presence"
)

// NewStore opens an empty store for one subtest. Run closes it.
type NewStore func(t *testing.T) connlog.LogStore

// Run checks the LogStore contract against stores made by newStore.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s connlog.LogStore)
	}{
		{"RoundTripKeepsEveryColumn", testRoundTrip},
		{"RoundTripMixedResources", testMixedResources},
		{"AppendEmpty", testAppendEmpty},
		{"AppendIsIdempotent", testIdempotent},
		{"AppendIsAllOrNothing", testAllOrNothing},
		{"FindFilters", testFilters},
		{"FindLimitKeepsNewestOldestFirst", testLimit},
		{"FindEqualTimesKeepAppendOrder", testTies},
		{"DeleteBefore", testDeleteBefore},
		{"LargeBatch", testLargeBatch},
		{"ConcurrentAppends", testConcurrent},
		{"CanceledContext", testCanceled},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

// T0 is the start of the time range Records covers.
var T0 = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)

// Records makes n records starting at t0, one every 1.5 s: connects,
// disconnects (a fifth of them errors) and identity operations of 50
// devices, built by the real mappers, with ids unique to (t0, i).
func Records(n int, t0 time.Time) []connlog.Record {
	res := connlog.Resource{Location: "westeurope"}
	out := make([]connlog.Record, 0, n)
	for i := 0; len(out) < n; i++ {
		dev := fmt.Sprintf("dev-%03d", i%50)
		at := t0.Add(time.Duration(i) * 1500 * time.Millisecond)
		id := fmt.Sprintf("%s/%d/%d", dev, t0.UnixNano(), i)
		e := presence.ConnectionEvent{
			ID: id, Time: at, Hub: "bench.example.net", DeviceID: dev,
			Sequence: fmt.Sprintf("%064X", i), Protocol: "MQTT", ProtocolVersion: 4,
			MaskedIP: "10.1.2.XXX", SDKVersion: "azure-iot-device/1.18.3 (node v20.11.0; Linux; x64)",
			AuthType: "sas", SessionID: fmt.Sprintf("s%d", i), KeepAliveSeconds: 180,
		}
		switch i % 10 {
		case 0, 1, 2, 3:
			e.Kind = presence.Connected
		case 4, 5, 6:
			e.Kind, e.Reason, e.DurationMs = presence.Disconnected, presence.ReasonClient, 3_600_000
		case 7:
			e.Kind, e.Reason, e.Result = presence.Disconnected, presence.ReasonKeepAlive, presence.ResultClosedRemotely
			e.Detail = "no packet for 270s (keep-alive 180s)"
		case 8:
			e.Kind, e.Reason, e.Result = presence.Disconnected, presence.ReasonTakeover, presence.ResultTakeover
		case 9:
			out = append(out, connlog.FromChange(res, registryChange(id, dev, at)))
			continue
		}
		recs, err := connlog.FromConnectionEvent(res, e)
		if err != nil {
			panic(err)
		}
		out = append(out, recs...)
	}
	return out[:n]
}

func newRecord(id string, at time.Time, dev, category, level string) connlog.Record {
	return connlog.Record{
		ItemID: id, TimeGenerated: at, Category: category, Level: level,
		OperationName: connlog.OpDeviceConnect, DeviceID: dev,
		Properties: `{"deviceId":"` + dev + `"}`,
	}
}

func normalize(rs []connlog.Record) []connlog.Record {
	out := make([]connlog.Record, len(rs))
	for i, r := range rs {
		r.TimeGenerated = r.TimeGenerated.UTC().Round(0)
		out[i] = r
	}
	return out
}

func ids(rs []connlog.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ItemID
	}
	return out
}

func mustAppend(t *testing.T, s connlog.LogStore, rs []connlog.Record) {
	t.Helper()
	if err := s.Append(context.Background(), rs); err != nil {
		t.Fatalf("Append(%d records): %v", len(rs), err)
	}
}

func mustFind(t *testing.T, s connlog.LogStore, f connlog.Filter) []connlog.Record {
	t.Helper()
	rs, err := s.Find(context.Background(), f)
	if err != nil {
		t.Fatalf("Find(%+v): %v", f, err)
	}
	return rs
}

func testRoundTrip(t *testing.T, s connlog.LogStore) {
	in := Records(40, T0)
	dur := int64(0) // a zero duration is a value, not null
	in[3].DurationMs = &dur
	big := int64(1<<53 + 1)
	in[4].DurationMs = &big
	in[5].Properties = `{"deviceId":"ü \"quoted\" <&> 🚀","errorMessage":"a\nb"}`
	in[6].TimeGenerated = time.Date(2262, 4, 11, 0, 0, 0, 1, time.UTC)
	in[7].TimeGenerated = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	mustAppend(t, s, in)
	got := mustFind(t, s, connlog.Filter{})
	want := normalize(in)
	slices.SortStableFunc(want, func(a, b connlog.Record) int { return a.TimeGenerated.Compare(b.TimeGenerated) })
	if len(got) != len(want) {
		t.Fatalf("Find returned %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("record %d differs after the round trip:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// testMixedResources: records of several hubs (resource columns) in one
// batch, interleaved and in runs, each keep their own.
func testMixedResources(t *testing.T, s connlog.LogStore) {
	in := Records(700, T0)
	other := connlog.Resource{SubscriptionID: "11111111-2222-3333-4444-555555555555", ResourceGroup: "rg2", Location: "northeurope", TenantID: "t2", Hub: "hub2"}
	for i := range in {
		// Alternating in the first 64, a run of 300 later, one alone at the end.
		if (i < 64 && i%2 == 1) || (i >= 200 && i < 500) || i == len(in)-1 {
			r := &in[i]
			r.Location, r.ResourceID, r.SubscriptionID = other.Location, other.ID("x"), other.SubscriptionID
			r.ResourceGroup, r.Resource, r.TenantID = "RG2", other.HubName("x"), other.TenantID
			r.ResourceProvider, r.ResourceType, r.Type, r.SourceSystem = "P", "T", "Ty", "S"
		}
	}
	in[100].Location = "" // one field differs
	mustAppend(t, s, in)
	got := mustFind(t, s, connlog.Filter{})
	want := normalize(in)
	if len(got) != len(want) {
		t.Fatalf("Find returned %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("record %d differs after the round trip:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func testAppendEmpty(t *testing.T, s connlog.LogStore) {
	mustAppend(t, s, nil)
	mustAppend(t, s, []connlog.Record{})
	if got := mustFind(t, s, connlog.Filter{}); len(got) != 0 {
		t.Fatalf("empty store returned %d records", len(got))
	}
}

func testIdempotent(t *testing.T, s connlog.LogStore) {
	rs := Records(30, T0)
	mustAppend(t, s, rs[:20])
	// A redelivery of 10..19 together with new records, and a record
	// repeated inside one batch.
	batch := append(append([]connlog.Record{}, rs[10:30]...), rs[25])
	mustAppend(t, s, batch)
	// A repeat with other content keeps the first version.
	changed := rs[0]
	changed.Level = "Changed"
	mustAppend(t, s, []connlog.Record{changed})
	got := mustFind(t, s, connlog.Filter{})
	if !slices.Equal(ids(got), ids(rs)) {
		t.Fatalf("after repeated appends got ids\n%v\nwant\n%v", ids(got), ids(rs))
	}
	if got[0].Level != rs[0].Level {
		t.Errorf("a repeated _ItemId replaced the stored record: Level %q", got[0].Level)
	}
}

func testAllOrNothing(t *testing.T, s connlog.LogStore) {
	rs := Records(10, T0)
	bad := rs[7]
	bad.ItemID = ""
	batch := append(append([]connlog.Record{}, rs...), bad)
	err := s.Append(context.Background(), batch)
	if !errors.Is(err, connlog.ErrInvalidRecord) {
		t.Fatalf("Append with a record without _ItemId: err = %v, want ErrInvalidRecord", err)
	}
	if got := mustFind(t, s, connlog.Filter{}); len(got) != 0 {
		t.Fatalf("a failed Append stored %d records", len(got))
	}
}

func testFilters(t *testing.T, s connlog.LogStore) {
	at := func(sec int) time.Time { return T0.Add(time.Duration(sec) * time.Second) }
	fix := []connlog.Record{
		newRecord("a", at(0), "d1", connlog.CategoryConnections, connlog.LevelInformation),
		newRecord("b", at(10), "d1", connlog.CategoryConnections, connlog.LevelError),
		newRecord("c", at(20), "d2", connlog.CategoryConnections, connlog.LevelError),
		newRecord("d", at(30), "d2", connlog.CategoryDeviceIdentityOperations, connlog.LevelInformation),
		newRecord("e", at(40), "d1", connlog.CategoryDeviceIdentityOperations, connlog.LevelInformation),
		newRecord("f", at(50), "", connlog.CategoryConnections, connlog.LevelError),
	}
	mustAppend(t, s, fix)
	cases := []struct {
		name string
		f    connlog.Filter
		want []string
	}{
		{"all", connlog.Filter{}, []string{"a", "b", "c", "d", "e", "f"}},
		{"device", connlog.Filter{DeviceID: "d1"}, []string{"a", "b", "e"}},
		{"device no match", connlog.Filter{DeviceID: "D1"}, nil},
		{"category", connlog.Filter{Category: connlog.CategoryDeviceIdentityOperations}, []string{"d", "e"}},
		{"level", connlog.Filter{Level: connlog.LevelError}, []string{"b", "c", "f"}},
		{"since inclusive", connlog.Filter{Since: at(20)}, []string{"c", "d", "e", "f"}},
		{"until exclusive", connlog.Filter{Until: at(20)}, []string{"a", "b"}},
		{"window", connlog.Filter{Since: at(10), Until: at(40)}, []string{"b", "c", "d"}},
		{"device+level", connlog.Filter{DeviceID: "d1", Level: connlog.LevelError}, []string{"b"}},
		{"category+level+window", connlog.Filter{Category: connlog.CategoryConnections, Level: connlog.LevelError, Since: at(15), Until: at(60)}, []string{"c", "f"}},
		{"device+category+limit", connlog.Filter{DeviceID: "d1", Category: connlog.CategoryConnections, Limit: 1}, []string{"b"}},
		{"empty window", connlog.Filter{Since: at(41), Until: at(49)}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ids(mustFind(t, s, tc.f))
			if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("Find(%+v) = %v, want %v", tc.f, got, tc.want)
			}
			// The reference semantics agree.
			var ref []string
			for _, r := range fix {
				if tc.f.Match(r) {
					ref = append(ref, r.ItemID)
				}
			}
			if tc.f.Limit > 0 && len(ref) > tc.f.Limit {
				ref = ref[len(ref)-tc.f.Limit:]
			}
			if !slices.Equal(ref, tc.want) {
				t.Errorf("Filter.Match disagrees: %v, want %v", ref, tc.want)
			}
		})
	}
}

func testLimit(t *testing.T, s connlog.LogStore) {
	rs := Records(100, T0)
	// Append out of time order: the store orders by time, not arrival.
	mustAppend(t, s, rs[50:])
	mustAppend(t, s, rs[:50])
	got := mustFind(t, s, connlog.Filter{Limit: 10})
	if want := ids(rs[90:]); !slices.Equal(ids(got), want) {
		t.Fatalf("Find(Limit 10) = %v, want the newest ten oldest first %v", ids(got), want)
	}
	got = mustFind(t, s, connlog.Filter{Limit: 1000})
	if !slices.Equal(ids(got), ids(rs)) {
		t.Fatalf("Find(Limit 1000) returned %d records, not all 100 in order", len(got))
	}
}

func testTies(t *testing.T, s connlog.LogStore) {
	var rs []connlog.Record
	for i := range 12 {
		rs = append(rs, newRecord(fmt.Sprintf("tie-%02d", i), T0, "d", connlog.CategoryConnections, connlog.LevelInformation))
	}
	mustAppend(t, s, rs[:6])
	mustAppend(t, s, rs[6:])
	if got := mustFind(t, s, connlog.Filter{}); !slices.Equal(ids(got), ids(rs)) {
		t.Fatalf("equal times: got %v, want append order %v", ids(got), ids(rs))
	}
	if got := mustFind(t, s, connlog.Filter{Limit: 4}); !slices.Equal(ids(got), ids(rs[8:])) {
		t.Fatalf("equal times, limit 4: got %v, want %v", ids(got), ids(rs[8:]))
	}
}

func testDeleteBefore(t *testing.T, s connlog.LogStore) {
	rs := Records(200, T0)
	mustAppend(t, s, rs)
	cut := rs[120].TimeGenerated
	n, err := s.DeleteBefore(context.Background(), cut)
	if err != nil {
		t.Fatal(err)
	}
	if n != 120 {
		t.Errorf("DeleteBefore removed %d records, want 120", n)
	}
	if got := mustFind(t, s, connlog.Filter{}); !slices.Equal(ids(got), ids(rs[120:])) {
		t.Fatalf("after DeleteBefore %d records remain, want the 80 from the cut on", len(got))
	}
	n, err = s.DeleteBefore(context.Background(), cut)
	if err != nil || n != 0 {
		t.Fatalf("second DeleteBefore = %d, %v; want 0, nil", n, err)
	}
	// A deleted record may be appended again (a late redelivery after
	// retention): it is stored like a new one.
	mustAppend(t, s, rs[:1])
	if got := mustFind(t, s, connlog.Filter{Limit: 1000}); len(got) != 81 {
		t.Fatalf("after re-appending one deleted record %d remain, want 81", len(got))
	}
}

func testLargeBatch(t *testing.T, s connlog.LogStore) {
	rs := Records(2345, T0)
	mustAppend(t, s, rs)
	mustAppend(t, s, rs[1000:2001]) // a full redelivered slice
	got := mustFind(t, s, connlog.Filter{})
	if !slices.Equal(ids(got), ids(rs)) {
		t.Fatalf("large batch: %d records back, want %d in order", len(got), len(rs))
	}
}

func testConcurrent(t *testing.T, s connlog.LogStore) {
	rs := Records(800, T0)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 8 {
		wg.Go(func() {
			// Overlapping windows: every record is appended by two writers.
			lo := w * 100
			hi := min(lo+200, len(rs))
			for i := lo; i < hi; i += 50 {
				if err := s.Append(context.Background(), rs[i:min(i+50, hi)]); err != nil {
					errs <- err
					return
				}
			}
		})
		wg.Go(func() {
			if _, err := s.Find(context.Background(), connlog.Filter{DeviceID: "dev-007", Limit: 5}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := mustFind(t, s, connlog.Filter{}); !slices.Equal(ids(got), ids(rs)) {
		t.Fatalf("concurrent appends left %d records, want %d once each", len(got), len(rs))
	}
}

func testCanceled(t *testing.T, s connlog.LogStore) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Append(ctx, Records(5, T0)); err == nil {
		t.Error("Append with a canceled context succeeded")
	}
	if _, err := s.Find(ctx, connlog.Filter{}); err == nil {
		t.Error("Find with a canceled context succeeded")
	}
	if got := mustFind(t, s, connlog.Filter{}); len(got) != 0 {
		t.Fatalf("a canceled Append stored %d records", len(got))
	}
}

func testClosed(t *testing.T, s connlog.LogStore) {
	mustAppend(t, s, Records(3, T0))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Append(context.Background(), Records(1, T0.Add(time.Hour))); err == nil {
		t.Error("Append after Close succeeded")
	}
	if _, err := s.Find(context.Background(), connlog.Filter{}); err == nil {
		t.Error("Find after Close succeeded")
	}
	if _, err := s.DeleteBefore(context.Background(), T0); err == nil {
		t.Error("DeleteBefore after Close succeeded")
	}
}
