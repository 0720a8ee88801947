//go:build cgo

package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
)

// selectColumns are what Find reads from the day tables: the stored
// record columns (props for properties_s), in storedColumns order, and
// _Res.
var selectColumns = func() string {
	names := make([]string, len(storedColumns))
	for i, c := range storedColumns {
		if c.Name == connlog.ColProperties {
			names[i] = colProps
		} else {
			names[i] = quote(c.Name)
		}
	}
	return strings.Join(names, ", ") + ", " + colRes
}()

// Find returns the newest f.Limit matching records, oldest first. It reads
// the day tables f's time range touches (not the view), each pruned by
// its zone maps: TimeGenerated, and _DeviceKey for a device.
func (s *Store) Find(ctx context.Context, f connlog.Filter) ([]connlog.Record, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if err := s.sync(ctx); err != nil {
		return nil, err
	}
	s.writeMu.Lock()
	tables := slices.Clone(s.tables)
	s.writeMu.Unlock()
	tables = slices.DeleteFunc(tables, func(name string) bool {
		day, _ := tableDay(name)
		return !f.Since.IsZero() && !day.Add(24*time.Hour).After(f.Since) ||
			!f.Until.IsZero() && !day.Before(f.Until)
	})
	if len(tables) == 0 {
		return nil, ctx.Err()
	}
	where, args := f.Where(quote)
	if f.DeviceID != "" {
		where = append(where, colDeviceKey+" = ?")
		args = append(args, DeviceKey(f.DeviceID))
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	branches := make([]string, len(tables))
	var all []any
	for i, t := range tables {
		branches[i] = "SELECT " + selectColumns + ", " + colSeq + " FROM " + quote(t) + cond
		all = append(all, args...)
	}
	q := strings.Join(branches, " UNION ALL ")
	newestFirst := f.Limit > 0
	if newestFirst {
		q += " ORDER BY TimeGenerated DESC, " + colSeq + " DESC LIMIT ?"
		all = append(all, f.Limit)
	} else {
		q += " ORDER BY TimeGenerated, " + colSeq
	}
	rows, err := s.db.QueryContext(ctx, q, all...)
	if err != nil {
		return nil, fmt.Errorf("connlog/duckdb: find: %w", err)
	}
	defer rows.Close()
	// The tuples of every row the query sees (committed before it began;
	// append-only: the first len(res) never change).
	s.writeMu.Lock()
	res := s.resources
	s.writeMu.Unlock()
	out, err := scanRecords(rows, res)
	if err != nil {
		return nil, fmt.Errorf("connlog/duckdb: find: %w", err)
	}
	if newestFirst {
		slices.Reverse(out)
	}
	return out, nil
}

// scanRecords reads rows of selectColumns followed by _Seq; res are the
// resource tuples.
func scanRecords(rows *sql.Rows, res []resTuple) ([]connlog.Record, error) {
	var out []connlog.Record
	dests := make([]any, len(storedColumns)+2)
	var (
		r        connlog.Record
		timeNano int64
		duration sql.NullInt64
		props    string
		resID    int
		seq      int64
	)
	for i, c := range storedColumns {
		switch {
		case c.Name == connlog.ColTimeGenerated:
			dests[i] = &timeNano
		case c.Name == connlog.ColDurationMs:
			dests[i] = &duration
		case c.Name == connlog.ColProperties:
			dests[i] = &props
		default:
			dests[i] = stringField(&r, c.Name)
		}
	}
	dests[len(storedColumns)] = &resID
	dests[len(storedColumns)+1] = &seq
	for rows.Next() {
		r = connlog.Record{}
		duration = sql.NullInt64{}
		if err := rows.Scan(dests...); err != nil {
			return nil, err
		}
		rec := r
		if resID < 0 || resID >= len(res) {
			return nil, fmt.Errorf("record %s: resource tuple %d unknown", rec.ItemID, resID)
		}
		setResource(&rec, &res[resID])
		rec.TimeGenerated = time.Unix(0, timeNano).UTC()
		if duration.Valid {
			d := duration.Int64
			rec.DurationMs = &d
		}
		rec.Properties = unpackProperties(props, &rec)
		rec.CorrelationID = unpackCorrelation(rec.CorrelationID, &rec)
		out = append(out, rec)
	}
	return out, rows.Err()
}
