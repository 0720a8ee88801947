//go:build cgo && !sqlitelog

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/logstoretest"
	"github.com/tether-hub/tether/internal/connlog/sqlite"
)

// tether logs migrate on a data dir with a SQLite log: the job's size,
// progress, every record in the DuckDB log, logs.db kept as
// logs.db.migrated; run again, it has nothing to do.
func TestLogsMigrateCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old, err := sqlite.Open(ctx, filepath.Join(dir, app.SQLiteLogFile))
	if err != nil {
		t.Fatal(err)
	}
	recs := logstoretest.Records(45_000, logstoretest.T0)
	if err := old.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	old.Close()

	cli := &cliHub{flags: []string{"--data-dir", dir}}
	var out, errOut syncBuffer
	if err := cli.runCtx(ctx, &out, &errOut, "logs", "migrate", "--log-memory", "128MiB"); err != nil {
		t.Fatalf("logs migrate: %v\n%s", err, errOut.String())
	}
	progress := errOut.String()
	for _, want := range []string{"45000 records to copy\n", "45000 of 45000 records (100.0%)"} {
		if !strings.Contains(progress, want) {
			t.Errorf("progress does not say %q:\n%s", want, progress)
		}
	}
	if !strings.Contains(out.String(), "migrated 45000 records into "+filepath.Join(dir, app.LogFile)) {
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
