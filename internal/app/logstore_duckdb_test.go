//go:build cgo && !sqlitelog

package app_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/app/sqlitelogtest"
	"github.com/tether-hub/tether/internal/connlog"
)

// A data dir with a SQLite log is converted when the store opens: every
// record is in the DuckDB store afterwards, in order, with progress
// reported; logs.db becomes logs.db.migrated. Copying records again (a
// migration resumed after a crash before the rename) doubles nothing.
func TestOpenLogStoreMigratesSQLiteLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	defer app.SetMigrateBatch(2_000)()
	recs := sqlitelogtest.Write(t, dir, 4_500)

	var reports [][2]int64
	s, err := app.OpenLogStore(ctx, dir, app.LogStoreOptions{Memory: 128 << 20, Progress: func(done, total int64) {
		reports = append(reports, [2]int64{done, total})
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if want := [][2]int64{{0, 4_500}, {2_000, 4_500}, {4_000, 4_500}, {4_500, 4_500}}; !slices.Equal(reports, want) {
		t.Errorf("progress reports %v, want %v (the job's size first, then each batch)", reports, want)
	}
	got, err := s.Find(ctx, connlog.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) || !slices.EqualFunc(got, recs, func(a, b connlog.Record) bool {
		return a.ItemID == b.ItemID && a.Properties == b.Properties && a.TimeGenerated.Equal(b.TimeGenerated)
	}) {
		t.Fatalf("after migration the store holds %d records, want the %d of the SQLite log in order", len(got), len(recs))
	}
	if _, err := os.Stat(filepath.Join(dir, app.SQLiteLogFile)); !os.IsNotExist(err) {
		t.Errorf("logs.db still there after the migration (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, app.SQLiteLogFile+".migrated")); err != nil {
		t.Errorf("logs.db.migrated: %v", err)
	}
	// Appending the SQLite records again (a migration resumed after a
	// crash before the rename) doubles nothing.
	if err := s.Append(ctx, recs[1_000:3_000]); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Find(ctx, connlog.Filter{}); len(again) != len(recs) {
		t.Errorf("a repeated migration step left %d records, want %d", len(again), len(recs))
	}
}
