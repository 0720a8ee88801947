//go:build sqlitelog

package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
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

// OpenLogStore opens the log store of the data dir dir. A data dir whose
// log is DuckDB's (written by a default build) is refused: this build
// cannot read it, and starting beside it on an empty SQLite log would hide
// every record it holds.
func OpenLogStore(ctx context.Context, dir string, _ LogStoreOptions) (LogStore, error) {
	duck := filepath.Join(dir, DuckDBLogFile)
	if _, err := os.Stat(duck); err == nil {
		return nil, fmt.Errorf("%s holds a DuckDB log, which this tether (built with -tags sqlitelog) cannot read: run a default build (cgo), or move %s away to start this one on an empty SQLite log", dir, duck)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return sqlite.Open(ctx, filepath.Join(dir, LogFile))
}

// MigrateSQLiteLog has nothing to do in a SQLite build: its log is the
// SQLite one.
func MigrateSQLiteLog(context.Context, string, LogStoreOptions) error { return nil }
