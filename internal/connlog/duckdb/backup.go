//go:build cgo

package duckdb

import (
	"context"
	"fmt"
	"strings"
)

// BackupTo writes a consistent copy of the database to path (which must
// not exist): COPY FROM DATABASE reads one snapshot in one transaction, so
// the copy holds every record committed before it began and none of a
// batch half-way. Appends go on meanwhile.
func (s *Store) BackupTo(ctx context.Context, path string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.sync(ctx); err != nil {
		return fmt.Errorf("connlog/duckdb: backup to %s: %w", path, err)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var name string
	if err := conn.QueryRowContext(ctx, "SELECT current_database()").Scan(&name); err != nil {
		return fmt.Errorf("connlog/duckdb: backup to %s: %w", path, err)
	}
	lit := "'" + strings.ReplaceAll(path, "'", "''") + "'"
	if _, err := conn.ExecContext(ctx, "ATTACH "+lit+" AS tether_backup"); err != nil {
		return fmt.Errorf("connlog/duckdb: backup to %s: %w", path, err)
	}
	_, err = conn.ExecContext(ctx, "COPY FROM DATABASE "+quote(name)+" TO tether_backup")
	if _, derr := conn.ExecContext(context.WithoutCancel(ctx), "DETACH tether_backup"); err == nil {
		err = derr
	}
	if err != nil {
		return fmt.Errorf("connlog/duckdb: backup to %s: %w", path, err)
	}
	return nil
}
