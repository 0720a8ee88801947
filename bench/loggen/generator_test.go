package loggen_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/tether-hub/tether/bench/loggen"
	"github.com/tether-hub/tether/internal/connlog"
)

var end = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func generate(t *testing.T, o loggen.Options, batch int) ([]connlog.Record, *loggen.Generator) {
	t.Helper()
	g, err := loggen.New(o)
	if err != nil {
		t.Fatal(err)
	}
	var all []connlog.Record
	for {
		rs := g.Next(batch)
		if len(rs) == 0 {
			return all, g
		}
		all = append(all, rs...)
	}
}

func TestGeneratesTheRequestedRecords(t *testing.T) {
	o := loggen.Options{Records: 50_000, Devices: 500, End: end, Span: 24 * time.Hour}
	rs, g := generate(t, o, 7_000)
	if len(rs) != o.Records || g.Stats().Records != o.Records {
		t.Fatalf("%d records (stats %d), want %d", len(rs), g.Stats().Records, o.Records)
	}
	// The span is calibrated, then shifted so the newest record is just
	// before End: the oldest are near End-Span.
	start := end.Add(-o.Span * 11 / 10)
	var newest time.Time
	ids := map[string]bool{}
	devices := map[string]bool{}
	late := 0
	for i, r := range rs {
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		if ids[r.ItemID] {
			t.Fatalf("record %d: _ItemId %s repeats", i, r.ItemID)
		}
		ids[r.ItemID] = true
		devices[r.DeviceID] = true
		if r.TimeGenerated.Before(start) {
			t.Fatalf("record %d at %s, before the span starts (%s)", i, r.TimeGenerated, start)
		}
		if !r.TimeGenerated.Before(end) {
			late++
		}
		if r.TimeGenerated.After(newest) {
			newest = r.TimeGenerated
		}
		// Steps of different devices interleave, but never by more than a
		// step's own spread (a takeover's reconnect, a disable's kick).
		if i > 0 && r.TimeGenerated.Before(rs[i-1].TimeGenerated.Add(-time.Minute)) {
			t.Fatalf("record %d at %s goes back from %s", i, r.TimeGenerated, rs[i-1].TimeGenerated)
		}
		var props map[string]any
		if err := json.Unmarshal([]byte(r.Properties), &props); err != nil || props["deviceId"] != r.DeviceID {
			t.Fatalf("record %d: properties_s %s (%v)", i, r.Properties, err)
		}
	}
	if late > 0 {
		t.Errorf("%d records at or after End", late)
	}
	if want := end.Add(-time.Millisecond); !newest.Equal(want) {
		t.Errorf("newest record at %s, want %s (just before End)", newest, want)
	}
	if first := rs[0].TimeGenerated; first.After(end.Add(-o.Span * 9 / 10)) {
		t.Errorf("oldest record at %s: the records cover much less than the span (session %s)", first, g.SessionLength())
	}
	if len(devices) < o.Devices*9/10 {
		t.Errorf("records of %d devices, want most of %d", len(devices), o.Devices)
	}
}

// TestProportions: every kind of record the query benchmark looks for is
// there, in realistic proportions: mostly informational renewals, 404104
// the most common error, then 401003, then the rare ones.
func TestProportions(t *testing.T) {
	_, g := generate(t, loggen.Options{Records: 100_000, Devices: 1000, End: end}, 10_000)
	st := g.Stats()
	share := func(code string) float64 { return float64(st.ByResult[code]) / float64(st.Records) }
	t.Logf("by result %v; by category %v; session %s", st.ByResult, st.ByCategory, g.SessionLength())
	bounds := map[string][2]float64{
		"":       {0.70, 0.90},
		"404104": {0.05, 0.20},
		"401003": {0.03, 0.15},
		"400027": {0.003, 0.03},
		"409002": {0.001, 0.01},
		"500001": {0.0002, 0.005},
	}
	for code, b := range bounds {
		if s := share(code); s < b[0] || s > b[1] {
			t.Errorf("ResultType %q: %.4f of the records, want %.4f–%.4f", code, s, b[0], b[1])
		}
	}
	if st.ByResult["404104"] <= st.ByResult["401003"] || st.ByResult["401003"] <= st.ByResult["400027"] {
		t.Errorf("error order: %v", st.ByResult)
	}
	ops := float64(st.ByCategory[connlog.CategoryDeviceIdentityOperations]) / float64(st.Records)
	if ops <= 0 || ops > 0.05 {
		t.Errorf("DeviceIdentityOperations: %.4f of the records", ops)
	}
}

func TestDeterministic(t *testing.T) {
	o := loggen.Options{Records: 3000, Devices: 100, End: end, Seed: 7}
	a, _ := generate(t, o, 1000)
	b, _ := generate(t, o, 333) // the batch size does not matter
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same options, different records")
	}
	o.Seed = 8
	c, _ := generate(t, o, 1000)
	if reflect.DeepEqual(a, c) {
		t.Fatal("another seed, same records")
	}
}

func TestOptionsChecked(t *testing.T) {
	for _, o := range []loggen.Options{{}, {Records: -1}, {Records: 10, Devices: -1}, {Records: 10, Span: time.Second}} {
		if _, err := loggen.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// TestSkipContinuesTheSameRecords: a generator that skips k records then
// makes the rest makes what one that made them all made after the k-th,
// wherever k falls (inside a step's records too).
func TestSkipContinuesTheSameRecords(t *testing.T) {
	o := loggen.Options{Records: 20_000, Devices: 300, End: end, Span: 24 * time.Hour, Seed: 3}
	all, _ := generate(t, o, 1000)
	ks := []int{0, 1, 2, 3, 777, 4_001, 9_999, 19_998, 19_999, 20_000}
	// Boundaries inside a step: a device's two records in a row (a
	// disconnect at token expiry, a disable).
	for i := 0; i+1 < len(all) && len(ks) < 16; i++ {
		if all[i].DeviceID == all[i+1].DeviceID {
			ks = append(ks, i+1)
		}
	}
	for _, k := range ks {
		g, err := loggen.New(o)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.Skip(k); got != k {
			t.Fatalf("Skip(%d) skipped %d", k, got)
		}
		var rest []connlog.Record
		for {
			rs := g.Next(501)
			if len(rs) == 0 {
				break
			}
			rest = append(rest, rs...)
		}
		if len(rest) != len(all)-k {
			t.Fatalf("after Skip(%d): %d records, want %d", k, len(rest), len(all)-k)
		}
		for i := range rest {
			if !reflect.DeepEqual(rest[i], all[k+i]) {
				t.Fatalf("after Skip(%d): record %d is %+v, want %+v", k, i, rest[i], all[k+i])
			}
		}
		if g.Stats().Records != o.Records {
			t.Fatalf("after Skip(%d) and the rest: Stats().Records %d", k, g.Stats().Records)
		}
	}
	g, _ := loggen.New(o)
	if got := g.Skip(o.Records + 5); got != o.Records {
		t.Fatalf("Skip past the end skipped %d, want %d", got, o.Records)
	}
	if rs := g.Next(10); len(rs) != 0 {
		t.Fatalf("%d records after skipping them all", len(rs))
	}
}
