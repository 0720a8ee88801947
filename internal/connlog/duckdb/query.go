package duckdb

import (
	"context"
	"database/sql"
	"fmt"
)

// MaxReadValue and MaxReadColumns are the bounds kql.ReadLimiter reports,
// the SQLite store's: DuckDB has no per-value limit, so the engine's result
// bounds (rows, bytes) and DuckDB's memory_limit are what hold a query.
const (
	MaxReadValue   = 256 << 10
	MaxReadColumns = 64
)

// ReadLimits returns MaxReadValue and MaxReadColumns (kql.ReadLimiter).
func (s *Store) ReadLimits() (maxValue, maxColumns int) { return MaxReadValue, MaxReadColumns }

// ReadQuery runs a read-only statement (a compiled KQL query) and hands
// its rows to scan; ctx cancels it (DuckDB interrupts the query).
//
// Read-only: the statement runs in a transaction that is always rolled
// back, so one that tried to write leaves nothing behind. The memory it
// may use is the database's memory_limit, shared with ingest; sorts and
// hash tables past it spill to disk.
func (s *Store) ReadQuery(ctx context.Context, query string, args []any, scan func(*sql.Rows) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := scan(rows); err != nil {
		return err
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("connlog/duckdb: query: %w", err)
	}
	return nil
}
