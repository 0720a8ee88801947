package app

import (
	"context"

	"github.com/tether-hub/tether/internal/backup"
	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/kql"
)

// The embedded log store is chosen at build time: DuckDB (columnar, cgo)
// by default, SQLite (pure Go) with -tags sqlitelog for CGO-free, static
// builds (docs/ARCHITECTURE.md, "Log store"). logstore_duckdb.go and
// logstore_sqlite.go each define LogFile, LogStoreKind, logDialect and
// OpenLogStore; logstore_nocgo.go stops a build without cgo that did not
// ask for SQLite.

// The log stores' files in the data dir. A default build converts a
// SQLite log it finds (logs.db, from SQLite builds and releases before
// DuckDB) into its own; a SQLite build refuses a DuckDB log.
const (
	SQLiteLogFile = "logs.db"
	DuckDBLogFile = "logs.duckdb"
)

// LogStore is what the hub needs of its embedded log store: records, KQL
// queries, consistent backups.
type LogStore interface {
	connlog.LogStore
	kql.Querier
	kql.ReadLimiter
	backup.Snapshotter
	Find(ctx context.Context, f connlog.Filter) ([]connlog.Record, error)
}

// LogStoreOptions tune OpenLogStore.
type LogStoreOptions struct {
	// Memory bounds the store's memory in bytes (DuckDB's memory_limit);
	// 0: the store's default. The SQLite store ignores it (its page caches
	// are fixed and small).
	Memory int64
	// Progress receives migration progress (records copied of total);
	// nil: none.
	Progress func(done, total int64)
}
