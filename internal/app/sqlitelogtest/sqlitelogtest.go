// Package sqlitelogtest makes what the DuckDB build's log migration starts
// from in tests: a data dir with a SQLite log (logs.db), as SQLite builds
// and releases before DuckDB leave it.
package sqlitelogtest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/logstoretest"
	"github.com/tether-hub/tether/internal/connlog/sqlite"
)

// File is the SQLite log's file in a data dir (app.SQLiteLogFile; this
// package cannot import app, whose tests use it).
const File = "logs.db"

// Write stores n realistic records (logstoretest.Records from
// logstoretest.T0) in dir's SQLite log and returns them in order.
func Write(t testing.TB, dir string, n int) []connlog.Record {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(dir, File))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs := logstoretest.Records(n, logstoretest.T0)
	if err := s.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	return recs
}
