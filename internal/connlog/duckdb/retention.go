//go:build cgo

package duckdb

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// PartitionSpan is the span of one partition (a day table). The Writer's
// retention rounds its cutoff down to it (connlog.Partitioned), so
// retention drops whole tables and never deletes rows.
func (s *Store) PartitionSpan() time.Duration { return 24 * time.Hour }

// DeleteBefore removes records with TimeGenerated < t: it drops the day
// tables that end by t and deletes the older rows of the day t falls in
// (none when t is a day's start, as the Writer's retention asks).
func (s *Store) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	if err := s.sync(ctx); err != nil {
		return 0, fmt.Errorf("connlog/duckdb: delete before %s: %w", t.UTC().Format(time.RFC3339), err)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed.Load() {
		return 0, ErrClosed
	}
	n, err := s.deleteBefore(ctx, t)
	if err != nil {
		return 0, fmt.Errorf("connlog/duckdb: delete before %s: %w", t.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}

func (s *Store) deleteBefore(ctx context.Context, t time.Time) (int64, error) {
	w, err := s.writer(ctx)
	if err != nil {
		return 0, err
	}
	var drop []string
	partial := ""
	for _, name := range s.tables {
		day, _ := tableDay(name)
		switch {
		case !day.Add(24 * time.Hour).After(t):
			drop = append(drop, name)
		case day.Before(t):
			partial = name
		}
	}
	if len(drop) == 0 && partial == "" {
		return 0, nil
	}
	if _, err := w.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		s.dropWriter()
		return 0, err
	}
	var total int64
	err = func() error {
		for _, name := range drop {
			var n int64
			if err := w.QueryRowContext(ctx, "SELECT count(*) FROM "+quote(name)).Scan(&n); err != nil {
				return err
			}
			total += n
			if _, err := w.ExecContext(ctx, "DROP TABLE "+quote(name)); err != nil {
				return err
			}
			if _, err := w.ExecContext(ctx, "DELETE FROM tether_meta WHERE key = ?", "sorted:"+name); err != nil {
				return err
			}
		}
		if partial != "" {
			res, err := w.ExecContext(ctx, "DELETE FROM "+quote(partial)+" WHERE TimeGenerated < ?", t.UnixNano())
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += n
		}
		if len(drop) > 0 {
			rest := slices.DeleteFunc(slices.Clone(s.tables), func(n string) bool { return slices.Contains(drop, n) })
			if _, err := w.ExecContext(ctx, viewSQL(rest, s.resources)); err != nil {
				return err
			}
		}
		_, err := w.ExecContext(ctx, "COMMIT")
		return err
	}()
	if err != nil {
		if _, rerr := w.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			s.dropWriter()
		}
		return 0, err
	}
	s.tables = slices.DeleteFunc(s.tables, func(n string) bool { return slices.Contains(drop, n) })
	return total, nil
}
