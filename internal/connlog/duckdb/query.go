//go:build cgo

package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/kql"
)

// tablesWithin are the day tables of tables that may hold records in
// [lo, hi] (a zero bound is open).
func tablesWithin(tables []string, lo, hi time.Time) []string {
	var out []string
	for _, name := range tables {
		day, _ := tableDay(name)
		if (!lo.IsZero() && !day.Add(24*time.Hour).After(lo)) || (!hi.IsZero() && day.After(hi)) {
			continue
		}
		out = append(out, name)
	}
	return out
}

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
	return s.ReadQueryIn(ctx, kql.TimeRange{}, query, args, scan)
}

// ReadQueryIn is ReadQuery for a statement that reads only records
// within bounds (kql.RangeQuerier): in its transaction a temporary view
// AzureDiagnostics over just the day tables within bounds shadows the
// view over all of them. Besides not scanning the other days, this spares
// DuckDB binding them: a UNION ALL costs ~5 ms a day table to plan.
func (s *Store) ReadQueryIn(ctx context.Context, bounds kql.TimeRange, query string, args []any, scan func(*sql.Rows) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if s.tailConn != nil {
		// Without waiting for the mover (tail.go).
		if ok, err := s.readTail(ctx, bounds, query, args, scan); ok || err != nil {
			return err
		}
	}
	if err := s.sync(ctx); err != nil {
		return err
	}
	s.writeMu.Lock()
	all := slices.Clone(s.tables)
	res := s.resources // append-only: the first len(res) never change
	s.writeMu.Unlock()
	tables := tablesWithin(all, bounds.Start, bounds.End)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if len(tables) < len(all) {
		if _, err := tx.ExecContext(ctx, strings.Replace(viewSQL(tables, res), "CREATE OR REPLACE VIEW", "CREATE OR REPLACE TEMP VIEW", 1)); err != nil {
			return err
		}
	}
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
