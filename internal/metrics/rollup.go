package metrics

import (
	"context"
	"fmt"
)

// backfillHours fills the hourly rollup from the minute table when it has
// none (a history written before the rollup existed): every hour row and
// hour tick count is the merge of that hour's minutes, as write keeps
// them. It runs in one transaction, so a crash leaves the hour table empty
// and the next open fills it; once it holds rows, write keeps it.
func (s *Store) backfillHours(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var hours, minutes bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM hour), EXISTS (SELECT 1 FROM min)`).Scan(&hours, &minutes); err != nil {
		return err
	}
	if hours || !minutes {
		return nil
	}
	// ts - ((ts % 3600) + 3600) % 3600 is floorHour (SQLite's % keeps the
	// sign of ts).
	for _, q := range []string{
		`INSERT INTO hour (ts, series, sum, count, min, max)
			SELECT ts - ((ts % 3600) + 3600) % 3600 AS h, series, sum(sum), sum(count), min(min), max(max)
			FROM min WHERE count > 0 GROUP BY h, series`,
		`DELETE FROM ticks WHERE grain = 3600`,
		`INSERT INTO ticks (grain, ts, n)
			SELECT 3600, ts - ((ts % 3600) + 3600) % 3600 AS h, sum(n) FROM ticks WHERE grain = 60 GROUP BY h`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("backfill: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.log.Info("filled the hourly rollup from the minute history")
	return nil
}
