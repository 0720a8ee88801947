package sqlite

import (
	"context"
	"fmt"
	"time"
)

// deleteChunk bounds one DELETE, so retention never holds the write lock
// for long and appends interleave.
const deleteChunk = 5000

// DeleteBefore removes records older than t, deleteChunk rows per
// transaction, and returns how many it removed.
func (s *Store) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	var total int64
	for {
		n, err := s.deleteChunk(ctx, t)
		total += n
		if err != nil {
			return total, err
		}
		if n < deleteChunk {
			return total, nil
		}
	}
}

func (s *Store) deleteChunk(ctx context.Context, t time.Time) (int64, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed.Load() {
		return 0, ErrClosed
	}
	w, err := s.writer(ctx)
	if err != nil {
		return 0, fmt.Errorf("connlog/sqlite: delete before %s: %w", t.UTC().Format(time.RFC3339), err)
	}
	res, err := w.ExecContext(ctx,
		"DELETE FROM "+table+" WHERE rowid IN (SELECT rowid FROM "+table+" WHERE TimeGenerated < ? LIMIT ?)",
		t.UnixNano(), deleteChunk)
	if err != nil {
		s.checkConn(err)
		return 0, fmt.Errorf("connlog/sqlite: delete before %s: %w", t.UTC().Format(time.RFC3339), err)
	}
	return res.RowsAffected()
}
