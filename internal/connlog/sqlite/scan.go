package sqlite

import (
	"context"
	"fmt"

	"github.com/tether-hub/tether/internal/connlog"
)

// Scan returns up to n records stored after rowid after, in storage
// order, and the rowid of the last one (after itself when there are
// none): a cursor over the whole store that holds n records at a time,
// for copying it elsewhere (the DuckDB store's migration).
func (s *Store) Scan(ctx context.Context, after int64, n int) ([]connlog.Record, int64, error) {
	if s.closed.Load() {
		return nil, after, ErrClosed
	}
	rows, err := s.db.QueryContext(ctx, "SELECT rowid, "+selectColumns+" FROM "+table+" WHERE rowid > ? ORDER BY rowid LIMIT ?", after, n)
	if err != nil {
		return nil, after, fmt.Errorf("connlog/sqlite: scan: %w", err)
	}
	defer rows.Close()
	var out []connlog.Record
	var row scanRow
	var id int64
	dests := append([]any{&id}, scanDests(&row)...)
	last := after
	for rows.Next() {
		row = scanRow{}
		if err := rows.Scan(dests...); err != nil {
			return nil, after, fmt.Errorf("connlog/sqlite: scan: %w", err)
		}
		out = append(out, row.record())
		last = id
	}
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("connlog/sqlite: scan: %w", err)
	}
	return out, last, nil
}

// Count is the number of records stored.
func (s *Store) Count(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n)
	return n, err
}
