//go:build cgo

package duckdb_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/duckdb"
	"github.com/tether-hub/tether/internal/connlog/logstoretest"
)

// Queries read staged records without moving them (the mover is held
// off here), each once: repeats of stored records, of staged ones and of
// records earlier in the same batch are left out, a late record that is
// not a repeat is not; the answers are the same once everything is moved.
func TestQueriesReadTheStage(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "logs.duckdb")
	s, err := duckdb.Open(ctx, path, duckdb.Options{MemoryLimit: 128 << 20, CompactAfter: -1})
	if err != nil {
		t.Fatal(err)
	}
	all := logstoretest.Records(3000, logstoretest.T0)
	if err := s.Append(ctx, all[:1000]); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened with moves only on demand: all[:1000] are stored, what
	// follows stays staged.
	s, err = duckdb.Open(ctx, path, duckdb.Options{MemoryLimit: 128 << 20, CompactAfter: -1, MoveRecords: 1 << 30, MaxStaged: 1 << 30, MoveInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	late := all[1500]
	late.ItemID = "late-one"
	batches := [][]connlog.Record{
		all[1000:2000],
		append(slices.Clone(all[500:510]), all[2000:2500]...),   // stored repeats first
		append(slices.Clone(all[1200:1210]), all[2500:2600]...), // staged repeats
		append(slices.Clone(all[2600:3000]), all[2990], late),   // a repeat in its own batch, a late record
	}
	for _, b := range batches {
		if err := s.Append(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	want := append(slices.Clone(all), late)
	check := func(when string) {
		t.Helper()
		var n, ids int64
		var lates int64
		err := s.ReadQuery(ctx, "SELECT count(*), count(DISTINCT _ItemId), count(*) FILTER (WHERE _ItemId = 'late-one') FROM AzureDiagnostics", nil, func(r *sql.Rows) error {
			for r.Next() {
				if err := r.Scan(&n, &ids, &lates); err != nil {
					return err
				}
			}
			return r.Err()
		})
		if err != nil || n != int64(len(want)) || ids != n || lates != 1 {
			t.Fatalf("%s: %d records, %d ids, %d late (%v), want %d each and 1 late", when, n, ids, lates, err, len(want))
		}
		var dev int64
		err = s.ReadQuery(ctx, "SELECT count(*) FROM AzureDiagnostics WHERE DeviceId = ?", []any{"dev-007"}, func(r *sql.Rows) error {
			for r.Next() {
				if err := r.Scan(&dev); err != nil {
					return err
				}
			}
			return r.Err()
		})
		wantDev := 0
		for _, r := range want {
			if r.DeviceID == "dev-007" {
				wantDev++
			}
		}
		if err != nil || dev != int64(wantDev) {
			t.Fatalf("%s: dev-007 has %d records (%v), want %d", when, dev, err, wantDev)
		}
	}
	check("staged")
	if st := s.Stats(); st.Moves != 0 || s.Staged() == 0 {
		t.Fatalf("the queries moved the stage: %d moves, %d staged", st.Moves, s.Staged())
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check("moved")
	if s.Stats().Moves == 0 {
		t.Fatal("Flush moved nothing")
	}
}
