//go:build cgo

package duckdb

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// sortingSuffix names the copy of a day table being sorted.
const sortingSuffix = "_sorting"

// compactDue sorts every day table whose day ended CompactAfter ago and
// that is not sorted yet.
func (s *Store) compactDue() {
	if err := s.compactBefore(context.Background(), s.o.Now().Add(-s.o.CompactAfter)); err != nil {
		s.log.Warn("connlog/duckdb: compaction failed; retrying later", "err", err)
	}
}

// CompactAll sorts by device every day table whose day ended by now (the
// background loop does it CompactAfter later).
func (s *Store) CompactAll(ctx context.Context, now time.Time) error {
	return s.compactBefore(ctx, now)
}

// compactBefore sorts the day tables whose day ended by t.
func (s *Store) compactBefore(ctx context.Context, t time.Time) error {
	s.writeMu.Lock()
	tables := slices.Clone(s.tables)
	s.writeMu.Unlock()
	for _, name := range tables {
		day, _ := tableDay(name)
		if day.Add(24 * time.Hour).After(t) {
			continue
		}
		select {
		case <-s.stop:
			return nil
		default:
		}
		if err := s.Compact(ctx, name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// Compact rewrites the day table name sorted by (_DeviceKey,
// TimeGenerated), once: the sort runs beside ingest on a pool connection,
// then, under the write lock, the rows that arrived meanwhile are added
// and the sorted copy takes the table's place in one transaction.
func (s *Store) Compact(ctx context.Context, name string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	key := "sorted:" + name
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM tether_meta WHERE key = ?", key).Scan(&n); err != nil || n > 0 {
		return err
	}
	tmp := name + sortingSuffix
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var maxSeq int64
	if err := conn.QueryRowContext(ctx, "SELECT coalesce(max("+colSeq+"), 0) FROM "+quote(name)).Scan(&maxSeq); err != nil {
		return err
	}
	start := time.Now()
	for _, q := range []string{
		"DROP TABLE IF EXISTS " + quote(tmp),
		createTableSQL(tmp),
		fmt.Sprintf("INSERT INTO %s SELECT * FROM %s WHERE %s <= %d ORDER BY %s, TimeGenerated, %s",
			quote(tmp), quote(name), colSeq, maxSeq, colDeviceKey, colSeq),
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	sorted := time.Since(start)

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	if !slices.Contains(s.tables, name) { // dropped by retention meanwhile
		_, err := conn.ExecContext(ctx, "DROP TABLE IF EXISTS "+quote(tmp))
		return err
	}
	w, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := w.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		s.dropWriter()
		return err
	}
	for _, q := range []string{
		fmt.Sprintf("INSERT INTO %s SELECT * FROM %s WHERE %s > %d ORDER BY %s", quote(tmp), quote(name), colSeq, maxSeq, colSeq),
		"DROP TABLE " + quote(name),
		"ALTER TABLE " + quote(tmp) + " RENAME TO " + quote(name),
		viewSQL(s.tables, s.resources),
		"INSERT INTO tether_meta VALUES ('" + key + "', 'yes')",
		"COMMIT",
	} {
		if _, err := w.ExecContext(ctx, q); err != nil {
			if _, rerr := w.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
				s.dropWriter()
			}
			return err
		}
	}
	s.log.Info("connlog/duckdb: day table sorted by device", "table", name, "sort", sorted, "total", time.Since(start))
	return nil
}
