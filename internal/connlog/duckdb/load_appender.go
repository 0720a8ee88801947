//go:build cgo && !duckdb_arrow

package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/tether-hub/tether/internal/connlog"
)

// appenderLoad is the loader of the default build: DuckDB's Appender, a
// call per value.
type appenderLoad []dayLoad

func prepareLoad(_ context.Context, _ *sql.Conn, loads []dayLoad) (loader, error) {
	return appenderLoad(loads), nil
}

func (l appenderLoad) close(context.Context, *sql.Conn) {}

func (l appenderLoad) load(ctx context.Context, w *sql.Conn, i int) (int64, error) {
	d := l[i]
	var bytes int64
	err := w.Raw(func(dc any) error {
		conn, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		row := make([]driver.Value, appendColumnCount())
		a, err := duckdb.NewAppender(conn, "", "", d.table)
		if err != nil {
			return err
		}
		for j, i := range d.idx {
			r := d.rows.record(int(i))
			bytes += fillRow(row, &r, d.seqs[j], d.res[j])
			if err := a.AppendRow(row...); err != nil {
				a.Close()
				return err
			}
		}
		return a.Close()
	})
	return bytes, err
}

// fillRow sets row to r's values in table column order and returns their
// size (estimate).
func fillRow(row []driver.Value, r *connlog.Record, seq int64, res uint16) int64 {
	n := int64(0)
	for i, c := range storedColumns {
		var v driver.Value
		switch c.Name {
		case connlog.ColTimeGenerated:
			v = r.TimeGenerated.UnixNano()
			n += 8
		case connlog.ColDurationMs:
			if r.DurationMs != nil {
				v = *r.DurationMs
			}
			n += 8
		case connlog.ColProperties:
			p := packProperties(r)
			v = p
			n += int64(len(p))
		case connlog.ColCorrelationID:
			c := packCorrelation(r)
			v = c
			n += int64(len(c))
		default:
			str := *stringField(r, c.Name)
			v = str
			n += int64(len(str))
		}
		row[i] = v
	}
	row[len(storedColumns)] = seq
	row[len(storedColumns)+1] = DeviceKey(r.DeviceID)
	row[len(storedColumns)+2] = res
	return n + 14
}
