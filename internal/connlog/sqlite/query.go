package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// ReadQuery runs a read-only statement (a compiled KQL query) on a pool
// connection set to query_only, so a statement that tried to write fails
// instead of writing, and hands the rows to scan. ctx cancels it.
func (s *Store) ReadQuery(ctx context.Context, query string, args []any, scan func(*sql.Rows) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA query_only = ON"); err != nil {
		return err
	}
	defer conn.ExecContext(context.Background(), "PRAGMA query_only = OFF")
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
