package metrics

import (
	"context"
	"fmt"
)

// BackupTo writes a consistent copy of the history to path (which must
// not exist): what memory holds is flushed first, then SQLite's VACUUM
// INTO copies one snapshot, in which the journal positions and the counts
// they account for are always together (they are written in one
// transaction).
func (s *Store) BackupTo(ctx context.Context, path string) error {
	if err := s.Flush(ctx); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return fmt.Errorf("metrics: backup to %s: %w", path, err)
	}
	return nil
}
