//go:build cgo && !sqlitelog

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/app/sqlitelogtest"
	"github.com/tether-hub/tether/internal/connlog"
)

// tether logs migrate on a data dir with a SQLite log: the job's size,
// progress, every record in the DuckDB log, logs.db kept as
// logs.db.migrated; run again, it has nothing to do.
func TestLogsMigrateCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	recs := sqlitelogtest.Write(t, dir, 5_000) // one batch: the progress lines, not the batching (TestOpenLogStoreMigratesSQLiteLog)

	cli := &cliHub{flags: []string{"--data-dir", dir}}
	var out, errOut syncBuffer
	if err := cli.runCtx(ctx, &out, &errOut, "logs", "migrate", "--log-memory", "128MiB"); err != nil {
		t.Fatalf("logs migrate: %v\n%s", err, errOut.String())
	}
	progress := errOut.String()
	for _, want := range []string{"5000 records to copy\n", "5000 of 5000 records (100.0%)"} {
		if !strings.Contains(progress, want) {
			t.Errorf("progress does not say %q:\n%s", want, progress)
		}
	}
	if !strings.Contains(out.String(), "migrated 5000 records into "+filepath.Join(dir, app.LogFile)) {
		t.Errorf("summary: %s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, app.SQLiteLogFile+".migrated")); err != nil {
		t.Errorf("logs.db.migrated: %v", err)
	}
	s, err := app.OpenLogStore(ctx, dir, app.LogStoreOptions{Memory: 128 << 20})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Find(ctx, connlog.Filter{})
	s.Close()
	if err != nil || len(got) != len(recs) {
		t.Fatalf("the DuckDB log holds %d records (%v), want %d", len(got), err, len(recs))
	}

	again := cli.mustRun(t, "logs", "migrate")
	if !strings.Contains(again, "nothing to migrate") {
		t.Errorf("second run: %s", again)
	}
}
