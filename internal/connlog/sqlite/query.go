package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// MaxReadValue bounds every string, BLOB and row a read query builds
// (SQLITE_LIMIT_LENGTH on its connection): a query that makes a longer one
// fails ("string or blob too big") instead of growing the hub's memory.
// The longest value the log holds is a record's properties_s (about 1 KB);
// 256 KiB leaves room for what queries build from them, e.g. make_set of
// ~10,000 device ids.
const MaxReadValue = 256 << 10

// MaxReadColumns bounds the columns of a read query's result and of every
// subquery in it (SQLITE_LIMIT_COLUMN): with MaxReadValue it bounds the
// size of one row, which SQLite holds whole before it hands it over.
const MaxReadColumns = 64

// readCacheKiB is the page cache of a read query's connection (SQLite's
// default: 2,000 KiB), set explicitly because the sorters and temporary
// tables of a query spill to temporary files past it: with the value limit
// it is what bounds the memory one running query holds in SQLite.
const readCacheKiB = 2000

// ReadLimits returns MaxReadValue and MaxReadColumns (kql.ReadLimiter).
func (s *Store) ReadLimits() (maxValue, maxColumns int) { return MaxReadValue, MaxReadColumns }

// ReadQuery runs a read-only statement (a compiled KQL query) on a pool
// connection set to query_only, so a statement that tried to write fails
// instead of writing, and hands the rows to scan. ctx cancels it.
//
// The connection's limits bound what the statement may build in memory
// (MaxReadValue, readCacheKiB, temporary storage on disk); they are
// restored before it goes back to the pool, which the write connection
// also comes from. The statement and scan run on a thread of lower CPU
// priority (Linux: inBackground).
func (s *Store) ReadQuery(ctx context.Context, query string, args []any, scan func(*sql.Rows) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return inBackground(func() error { return s.readQuery(ctx, query, args, scan) })
}

func (s *Store) readQuery(ctx context.Context, query string, args []any, scan func(*sql.Rows) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	restore, err := readOnly(ctx, conn)
	defer restore()
	if err != nil {
		return err
	}
	rows, err := conn.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := scan(rows); err != nil {
		return err
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("connlog/sqlite: query: %w", err)
	}
	return nil
}

// readOnly sets a pool connection up for one read query; restore undoes
// it (also after an error part-way).
func readOnly(ctx context.Context, conn *sql.Conn) (restore func(), err error) {
	var undo []string
	prevLen := -1
	restore = func() {
		bg := context.Background()
		for _, u := range undo {
			_, _ = conn.ExecContext(bg, u)
		}
		if prevLen >= 0 {
			_, _ = sqlite.Limit(conn, sqlite3.SQLITE_LIMIT_LENGTH, prevLen)
		}
	}
	var cache, temp int
	if err := conn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil {
		return restore, err
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&temp); err != nil {
		return restore, err
	}
	for _, p := range []struct{ set, undo string }{
		{"PRAGMA query_only = ON", "PRAGMA query_only = OFF"},
		{fmt.Sprintf("PRAGMA cache_size = -%d", readCacheKiB), fmt.Sprintf("PRAGMA cache_size = %d", cache)},
		{"PRAGMA temp_store = FILE", fmt.Sprintf("PRAGMA temp_store = %d", temp)},
	} {
		if _, err := conn.ExecContext(ctx, p.set); err != nil {
			return restore, err
		}
		undo = append(undo, p.undo)
	}
	prevLen, err = sqlite.Limit(conn, sqlite3.SQLITE_LIMIT_LENGTH, MaxReadValue)
	if err != nil {
		return restore, err
	}
	prevCols, err := sqlite.Limit(conn, sqlite3.SQLITE_LIMIT_COLUMN, MaxReadColumns)
	if err != nil {
		return restore, err
	}
	undoLen := restore
	restore = func() {
		undoLen()
		_, _ = sqlite.Limit(conn, sqlite3.SQLITE_LIMIT_COLUMN, prevCols)
	}
	return restore, nil
}
