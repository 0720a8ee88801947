//go:build cgo

package duckdb_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/duckdb"
	"github.com/tether-hub/tether/internal/connlog/logstoretest"
)

// The resource columns are stored once per tuple (_Res): records of two
// hubs (one renamed mid-way, with a quote and a NUL in its values) come
// back with their own values from Find and from the view, also after
// reopening; a rejected Append adds no tuple.
func TestResourceTuples(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "logs.duckdb")
	s := openAt(t, path)
	recs := logstoretest.Records(40, logstoretest.T0)
	for i := range recs[20:] {
		r := &recs[20+i]
		r.Resource, r.ResourceID, r.Location = "O'HUB\x00B", "/X/O'HUB\x00B", "north'europe"
	}
	if err := s.Append(ctx, recs[:30]); err != nil {
		t.Fatal(err)
	}
	bad := recs[30:]
	bad[0].Resource = "ANOTHER"
	bad[1].ItemID = "" // invalid: the whole Append fails
	if err := s.Append(ctx, bad); err == nil {
		t.Fatal("Append of an invalid record succeeded")
	}
	bad[1].ItemID = "fixed"
	bad[0].Resource = "O'HUB\x00B"
	if err := s.Append(ctx, bad); err != nil {
		t.Fatal(err)
	}
	check := func(s *duckdb.Store) {
		t.Helper()
		got, err := s.Find(ctx, connlog.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(recs) {
			t.Fatalf("Find: %d records, want %d", len(got), len(recs))
		}
		want := map[string]connlog.Record{}
		for _, r := range recs {
			want[r.ItemID] = r
		}
		for _, r := range got {
			w := want[r.ItemID]
			if r.Resource != w.Resource || r.ResourceID != w.ResourceID || r.Location != w.Location ||
				r.TenantID != w.TenantID || r.Type != w.Type || r.SourceSystem != w.SourceSystem {
				t.Errorf("Find %s: resource %q %q %q, want %q %q %q", r.ItemID, r.Resource, r.ResourceID, r.Location, w.Resource, w.ResourceID, w.Location)
			}
		}
		rows, err := s.DB().QueryContext(ctx, "SELECT _ItemId, Resource, ResourceId, _ResourceId, Location FROM AzureDiagnostics")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var id, res, rid, rid2, loc string
			if err := rows.Scan(&id, &res, &rid, &rid2, &loc); err != nil {
				t.Fatal(err)
			}
			w := want[id]
			if res != w.Resource || rid != w.ResourceID || rid2 != w.ResourceID || loc != w.Location {
				t.Errorf("view %s: %q %q %q %q, want %q %q %q", id, res, rid, rid2, loc, w.Resource, w.ResourceID, w.Location)
			}
			n++
		}
		if n != len(recs) {
			t.Errorf("view: %d rows, want %d", n, len(recs))
		}
		var tuples int
		if err := s.DB().QueryRowContext(ctx, "SELECT count(*) FROM tether_resources").Scan(&tuples); err != nil || tuples != 2 {
			t.Errorf("tether_resources: %d tuples (%v), want 2", tuples, err)
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path)
	defer s.Close()
	check(s)
}
