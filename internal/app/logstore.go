package app

import (
	"context"

	"github.com/tether-hub/tether/internal/backup"
	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/kql"
)

// The embedded log store is chosen at build time: SQLite (pure Go) by
// default, DuckDB (columnar, cgo) with -tags duckdblog. DuckDB answers
// fleet-wide queries 20-100x faster but does not yet ingest as fast as the
// journal can deliver on 2 cores (docs/ARCHITECTURE.md, "Log store"), so it
// is not the default yet. logstore_duckdb.go and
// logstore_sqlite.go each define LogFile, LogStoreKind, logDialect and
// OpenLogStore.

// SQLiteLogFile is the SQLite log store's file in the data dir: the log
// of the default build, and what a DuckDB build migrates from.
const SQLiteLogFile = "logs.db"

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
