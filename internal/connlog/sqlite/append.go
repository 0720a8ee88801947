package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/tether-hub/tether/internal/connlog"
)

// chunkRows is how many rows one multi-row INSERT carries: 500 × 25
// columns stays under SQLite's 32766 bound parameters, and multi-row
// VALUES insert ~1.5× faster than single rows (deps.md §4).
const chunkRows = 500

func insertSQL(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + table + " (" + selectColumns + ") VALUES ")
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", len(storedColumns)), ",") + ")"
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	b.WriteString(" ON CONFLICT(" + connlog.ColItemID + ") DO NOTHING")
	return b.String()
}

// Append stores records in one transaction, skipping known _ItemIds.
func (s *Store) Append(ctx context.Context, records []connlog.Record) error {
	if len(records) == 0 {
		return ctx.Err()
	}
	for i := range records {
		if err := records[i].Validate(); err != nil {
			return err
		}
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("connlog/sqlite: append: %w", err)
	}
	defer tx.Rollback()
	args := make([]any, 0, min(len(records), chunkRows)*len(storedColumns))
	for start := 0; start < len(records); start += chunkRows {
		chunk := records[start:min(start+chunkRows, len(records))]
		args = args[:0]
		for i := range chunk {
			args = appendValues(args, &chunk[i])
		}
		if len(chunk) == chunkRows {
			_, err = tx.StmtContext(ctx, s.insertFull).ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insertSQL(len(chunk)), args...)
		}
		if err != nil {
			return fmt.Errorf("connlog/sqlite: append: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("connlog/sqlite: append: commit: %w", err)
	}
	return nil
}
