package sqlite

import (
	"context"
	"fmt"
)

// BackupTo writes a consistent copy of the database to path (which must
// not exist) while appends go on: SQLite's VACUUM INTO reads one snapshot
// of the database in a read transaction, so the copy holds every record
// committed before it began and none of a batch half-way, and is compact.
func (s *Store) BackupTo(ctx context.Context, path string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if _, err := s.db.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return fmt.Errorf("connlog/sqlite: backup to %s: %w", path, err)
	}
	return nil
}
