//go:build cgo

package duckdb_test

import (
	"context"
	"testing"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/duckdb"
	"github.com/tether-hub/tether/internal/connlog/logstoretest"
)

// CorrelationId comes back as appended through Find and the view, whether
// it is DeviceId/SequenceNumber (not stored), something else, empty, or
// text that starts with the marker byte.
func TestCorrelationPacking(t *testing.T) {
	recs := logstoretest.Records(8, logstoretest.T0)
	cases := []struct{ dev, seq, corr string }{
		{"dev-1", "0A0B", "dev-1/0A0B"}, // a connection event: derived
		{"dev-1", "0A0B", "dev-1/0A0C"},
		{"dev-1", "0A0B", "dev-10A0B/"},
		{"dev-1", "", "dev-1/"}, // derived, empty sequence
		{"dev-1", "0A0B", ""},
		{"dev-1", "0A0B", "\x01"},
		{"dev-1", "0A0B", "\x01\x01x"},
		{"dé/v", "s", "dé/v/s"},
	}
	derived := 0
	for i, c := range cases {
		recs[i].DeviceID, recs[i].SequenceNumber, recs[i].CorrelationID = c.dev, c.seq, c.corr
		packed := duckdb.PackCorrelation(&recs[i])
		if got := duckdb.UnpackCorrelation(packed, &recs[i]); got != c.corr {
			t.Fatalf("round trip of %q: %q (packed %q)", c.corr, got, packed)
		}
		if packed == "\x01" {
			derived++
		}
	}
	if derived != 3 {
		t.Errorf("%d CorrelationIds stored as derived, want 3", derived)
	}
	s := openTemp(t)
	defer s.Close()
	ctx := context.Background()
	if err := s.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	got, err := s.Find(ctx, connlog.Filter{})
	if err != nil || len(got) != len(recs) {
		t.Fatalf("find: %d records, %v", len(got), err)
	}
	want := map[string]string{}
	for i, r := range recs {
		want[r.ItemID] = r.CorrelationID
		if got[i].CorrelationID != r.CorrelationID {
			t.Errorf("Find: CorrelationId of %s = %q, want %q", r.ItemID, got[i].CorrelationID, r.CorrelationID)
		}
	}
	rows, err := s.DB().Query("SELECT _ItemId, CorrelationId FROM AzureDiagnostics")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, c string
		if err := rows.Scan(&id, &c); err != nil {
			t.Fatal(err)
		}
		if c != want[id] {
			t.Errorf("view: CorrelationId of %s = %q, want %q", id, c, want[id])
		}
	}
}

func FuzzCorrelationPacking(f *testing.F) {
	f.Add("dev", "00FF", "dev/00FF")
	f.Add("dev", "00FF", "\x01")
	f.Add("", "", "/")
	f.Add("a/b", "c", "a/b/c")
	f.Fuzz(func(t *testing.T, dev, seq, corr string) {
		r := connlog.Record{DeviceID: dev, SequenceNumber: seq, CorrelationID: corr}
		if got := duckdb.UnpackCorrelation(duckdb.PackCorrelation(&r), &r); got != corr {
			t.Fatalf("round trip of %q: %q", corr, got)
		}
	})
}
