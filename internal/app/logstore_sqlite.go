//go:build !cgo || !duckdblog

package app

import (
	"context"
	"path/filepath"

	"github.com/tether-hub/tether/internal/connlog/sqlite"
	"github.com/tether-hub/tether/internal/kql"
	kqlsqlite "github.com/tether-hub/tether/internal/kql/sqlite"
)

// LogFile is the Connections log database inside the data dir.
const LogFile = SQLiteLogFile

// LogStoreKind names the build's log store.
const LogStoreKind = "sqlite"

// logDialect is the KQL dialect of the log store.
var logDialect kql.Dialect = kqlsqlite.Dialect{}

// OpenLogStore opens the log store of the data dir dir.
func OpenLogStore(ctx context.Context, dir string, _ LogStoreOptions) (LogStore, error) {
	return sqlite.Open(ctx, filepath.Join(dir, LogFile))
}

// MigrateSQLiteLog has nothing to do in a SQLite build: its log is the
// SQLite one.
func MigrateSQLiteLog(context.Context, string, LogStoreOptions) error { return nil }
