//go:build cgo

package duckdb_test

import (
	"context"
	"hash/fnv"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/duckdb"
	"github.com/tether-hub/tether/internal/connlog/logstoretest"
)

func ids(rs []connlog.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ItemID
	}
	return out
}

// Records of three days go to three day tables; the view and Find see
// them all; sorting a day by device keeps every record and Find's order;
// reopening keeps the counters (a repeat is still recognised, new records
// still come after the old); DeleteBefore at a day's start drops tables.
func TestDaysCompactReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "logs.duckdb")
	s := openAt(t, path)
	day0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var all []connlog.Record
	for d := range 3 {
		// 2000 records, 1.5 s apart: 50 minutes of each day.
		all = append(all, logstoretest.Records(2000, day0.Add(time.Duration(d)*24*time.Hour+20*time.Hour))...)
	}
	for i := 0; i < len(all); i += 700 {
		if err := s.Append(ctx, all[i:min(i+700, len(all))]); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Tables(); !slices.Equal(got, []string{"AzureDiagnostics_20260301", "AzureDiagnostics_20260302", "AzureDiagnostics_20260303"}) {
		t.Fatalf("tables %v", got)
	}
	var n int64
	if err := s.DB().QueryRow("SELECT count(*) FROM AzureDiagnostics").Scan(&n); err != nil || n != int64(len(all)) {
		t.Fatalf("view counts %d (%v), want %d", n, err, len(all))
	}
	before, err := s.Find(ctx, connlog.Filter{DeviceID: "dev-007"})
	if err != nil || len(before) == 0 {
		t.Fatalf("find: %d, %v", len(before), err)
	}
	if err := s.Compact(ctx, "AzureDiagnostics_20260301"); err != nil {
		t.Fatal(err)
	}
	// Sorted by device: the first rows are one device's.
	var first, last string
	if err := s.DB().QueryRow(`SELECT first(DeviceId), last(DeviceId) FROM (SELECT DeviceId FROM "AzureDiagnostics_20260301" LIMIT 20)`).Scan(&first, &last); err != nil || first != last {
		t.Errorf("compacted table does not start with one device's rows: %q … %q (%v)", first, last, err)
	}
	after, err := s.Find(ctx, connlog.Filter{DeviceID: "dev-007"})
	if err != nil || !slices.Equal(ids(after), ids(before)) {
		t.Fatalf("Find by device after compaction: %d records (%v), want %d in the same order", len(after), err, len(before))
	}
	if got, _ := s.Find(ctx, connlog.Filter{}); !slices.Equal(ids(got), ids(all)) {
		t.Fatalf("Find all after compaction: %d records, not the appended order", len(got))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path)
	defer s.Close()
	more := logstoretest.Records(10, day0.Add(3*24*time.Hour))
	if err := s.Append(ctx, append(append([]connlog.Record{}, all[100:110]...), more...)); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Find(ctx, connlog.Filter{})
	if want := append(ids(all), ids(more)...); !slices.Equal(ids(got), want) {
		t.Fatalf("after reopen: %d records, want %d (repeats skipped, new ones last)", len(got), len(want))
	}
	// Ties keep append order across a reopen.
	if got, _ := s.Find(ctx, connlog.Filter{Limit: 3}); !slices.Equal(ids(got), ids(more[7:])) {
		t.Errorf("newest 3 after reopen: %v", ids(got))
	}
	removed, err := s.DeleteBefore(ctx, day0.Add(48*time.Hour))
	if err != nil || removed != 4000 {
		t.Fatalf("DeleteBefore removed %d (%v), want 4000", removed, err)
	}
	if got := s.Tables(); len(got) != 2 || !strings.HasSuffix(got[0], "20260303") {
		t.Fatalf("tables after retention: %v", got)
	}
	if err := s.DB().QueryRow("SELECT count(*) FROM AzureDiagnostics").Scan(&n); err != nil || n != 2010 {
		t.Fatalf("view counts %d (%v) after retention, want 2010", n, err)
	}
}

// properties_s is stored without the values its columns hold and comes
// back byte for byte, also when a value does not match its column, is not
// plain text, or the text is not JSON.
func TestPropertiesPacking(t *testing.T) {
	recs := logstoretest.Records(20, logstoretest.T0)
	odd := recs[0]
	odd.Properties = `{"deviceId":"other","protocol":"MQTT","x":"\u0001d"}`
	odd2 := recs[1]
	odd2.DeviceID = `dé"v`
	odd2.Properties = `{"deviceId":"dé\"v","deviceId":"dé\"v"}`
	odd3 := recs[2]
	odd3.Properties = "not json \x01d"
	odd.ItemID, odd2.ItemID, odd3.ItemID = "odd-1", "odd-2", "odd-3"
	recs = append(recs, odd, odd2, odd3)
	packedSmaller := 0
	for _, r := range recs {
		p := duckdb.PackProperties(&r)
		if got := duckdb.UnpackProperties(p, &r); got != r.Properties {
			t.Fatalf("round trip of %q: %q (packed %q)", r.Properties, got, p)
		}
		if got := string(duckdb.AppendPacked(nil, &r)); got != p {
			t.Fatalf("appended packing of %q: %q, want %q", r.Properties, got, p)
		}
		if len(p) < len(r.Properties) {
			packedSmaller++
		}
	}
	if packedSmaller < 20 {
		t.Errorf("only %d of the mapped records were packed", packedSmaller)
	}
	// And through the store, where the view rebuilds it in SQL.
	s := openTemp(t)
	defer s.Close()
	if err := s.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := s.DB().Query("SELECT _ItemId, properties_s FROM AzureDiagnostics")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	want := map[string]string{}
	for _, r := range recs {
		want[r.ItemID] = r.Properties
	}
	seen := 0
	for rows.Next() {
		var id, p string
		if err := rows.Scan(&id, &p); err != nil {
			t.Fatal(err)
		}
		if p != want[id] {
			t.Errorf("view properties_s of %s = %q, want %q", id, p, want[id])
		}
		seen++
	}
	if seen != len(recs) {
		t.Errorf("view has %d rows, want %d", seen, len(recs))
	}
}

func FuzzPropertiesPacking(f *testing.F) {
	f.Add("dev", "MQTT", `{"deviceId":"dev","protocol":"MQTT"}`, "")
	f.Add("d\x01", "", `{"deviceId":"d\u0001"}`, "")
	f.Add("a", "b", `"deviceId":"a""deviceId":"a"`, "")
	f.Add("x", "y", `{"deviceId":"x""protocol":"y"}`, "")
	f.Add("p", "p", `{"protocol":"p","deviceId":"p","protocol":"p"}`, "")
	f.Add("", "", `{"deviceId":"","protocol":""}`, "")
	f.Add("d", "p", `{"sdkVersion":"s","deviceId":"d","sdkVersion":"s"}`, "s")
	f.Add("d", "p", `{"deviceId":"d","sdkVersion":"d","protocol":"p"}`, "d")
	f.Add("a", "", `"deviceId":"a"deviceId":"a"`, "") // a second pair in the first one's closing quote
	f.Fuzz(func(t *testing.T, dev, proto, props, sdk string) {
		r := connlog.Record{DeviceID: dev, Protocol: proto, Properties: props, SDKVersion: sdk}
		packed := duckdb.PackProperties(&r)
		if got := duckdb.UnpackProperties(packed, &r); got != props {
			t.Fatalf("round trip of %q: %q", props, got)
		}
		// The one-pass packing stores what key-by-key replacement does.
		if slow := duckdb.PackSlow(&r); packed != slow {
			t.Fatalf("packing %q: %q, key by key %q", props, packed, slow)
		}
		// The Arrow loader's packing into its column buffer, the same.
		if got := string(duckdb.AppendPacked([]byte("x"), &r)); got != "x"+packed {
			t.Fatalf("appending the packing of %q: %q, want %q", props, got, "x"+packed)
		}
	})
}

// DeviceKey is FNV-1a of the id (the stored _DeviceKey of every record
// and the KQL dialect's pruning depend on it not changing).
func TestDeviceKeyIsFNV1a(t *testing.T) {
	for _, id := range []string{"", "a", "dev-000042", "device/with/slashes", "ünïcödé-設備", strings.Repeat("x", 300)} {
		h := fnv.New32a()
		h.Write([]byte(id))
		if got, want := duckdb.DeviceKey(id), h.Sum32(); got != want {
			t.Errorf("DeviceKey(%q) = %#x, FNV-1a %#x", id, got, want)
		}
	}
}
