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

// defaultTailBatch is Options.TailBatch's default in the Appender build,
// which registers no Arrow view: the Arrow build's all the same, since
// smaller batches did not shorten a reader's insert (logbench 2M, 1,024
// against 16,384: 240 against 250 ms a query; bench/README.md, issue 20
// session 16).
const defaultTailBatch = 16_384

// appenderTail is a frame's rows for its tail table in the Appender
// build: the staged frame itself (its buffer stays until the move that
// takes it has inserted the pending tails: stage.go) and each record's
// _Res. The tail inserter decodes and appends them, so the move's
// Appender work is done beside the Appends, not between moves.
type appenderTail struct {
	payload string
	res     []uint16
}

func (*appenderTail) free() {}

// buildTail makes the tail of a frame being staged (payload, the
// records'). nil when a record has a resource tuple not stored yet (the
// move that stores it makes its rows; readers move the stage while such
// a frame waits).
func (s *Store) buildTail(payload string, records []connlog.Record) *tail {
	snap := s.resSnap.Load()
	ra := resAssigner{res: snap.list, index: snap.index}
	res := make([]uint16, len(records))
	for i := range records {
		id, err := ra.id(&records[i])
		if err != nil || ra.added != nil {
			return nil
		}
		res[i] = id
	}
	return &tail{seqs: make([]int64, len(records)), data: &appenderTail{payload: payload, res: res}}
}

// insertTailRows appends the rows of tails to tail table table (in
// arrowDB, c's database) through DuckDB's Appender.
func insertTailRows(ctx context.Context, c *sql.Conn, table string, tails []*tail) error {
	return c.Raw(func(dc any) error {
		conn, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		a, err := duckdb.NewAppender(conn, arrowDB, "main", table[len(arrowDB+".main."):])
		if err != nil {
			return err
		}
		row := make([]driver.Value, appendColumnCount())
		var rs rows
		for _, tl := range tails {
			at := tl.data.(*appenderTail)
			rs.reset()
			if err := rs.add(at.payload, tl.seq0); err != nil || rs.len() != tl.n {
				a.Close()
				return fmt.Errorf("a staged frame's tail: %d records of %d: %v", rs.len(), tl.n, err)
			}
			for i := range tl.n {
				r := rs.record(i)
				fillRow(row, &r, tl.seq0+int64(i), at.res[i])
				if err := a.AppendRow(row...); err != nil {
					a.Close()
					return err
				}
			}
			if err := ctx.Err(); err != nil {
				a.Close()
				return err
			}
		}
		return a.Close()
	})
}
