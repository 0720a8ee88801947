package sqlite

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/tether-hub/tether/internal/connlog"
)

// Find returns the newest f.Limit matching records, oldest first. The
// WHERE clause uses one of the indexes: DeviceId or Category with the time
// range, else TimeGenerated.
func (s *Store) Find(ctx context.Context, f connlog.Filter) ([]connlog.Record, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	// The Log Analytics column names are plain SQL identifiers here.
	where, args := f.Where(func(col string) string { return col })
	q := "SELECT " + selectColumns + " FROM " + table
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	newestFirst := f.Limit > 0
	if newestFirst {
		q += " ORDER BY TimeGenerated DESC, rowid DESC LIMIT ?"
		args = append(args, f.Limit)
	} else {
		q += " ORDER BY TimeGenerated, rowid"
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("connlog/sqlite: find: %w", err)
	}
	defer rows.Close()
	var out []connlog.Record
	var row scanRow
	dests := scanDests(&row)
	for rows.Next() {
		row = scanRow{}
		if err := rows.Scan(dests...); err != nil {
			return nil, fmt.Errorf("connlog/sqlite: find: %w", err)
		}
		out = append(out, row.record())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("connlog/sqlite: find: %w", err)
	}
	if newestFirst {
		slices.Reverse(out)
	}
	return out, nil
}
