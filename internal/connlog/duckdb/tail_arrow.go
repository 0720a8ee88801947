//go:build cgo && duckdb_arrow

package duckdb

import (
	"context"
	"database/sql"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/tether-hub/tether/internal/connlog"
)

// defaultTailBatch is Options.TailBatch's default in the Arrow build:
// an Append does not insert its own tail (an INSERT's fixed cost, its
// Arrow view made and dropped, was a share of each 1,000-record Append),
// and each insert's Arrow view leaves ~17 KB of C memory behind
// (duckdb_arrow_scan: tail.go), so inserts are few and large.
const defaultTailBatch = 16_384

// tailSchema is the day tables' columns as Arrow fields (a tail's batch).
var tailSchema = arrowSchema()

// arrowTail is a frame's rows as one record batch, its buffers cut from
// one pooled buffer (colBufs' arena).
type arrowTail struct {
	batch arrow.RecordBatch
	bufs  colBufs
}

func (a *arrowTail) free() { a.batch.Release(); a.bufs.free() }

// buildTail makes the rows of a frame being staged (payload, the
// records') as the day tables hold them, but _Seq, which the stage
// numbers. nil when a record has a resource tuple not stored yet (the
// move that stores it makes its columns; readers move the stage while
// such a frame waits).
func (s *Store) buildTail(payload string, records []connlog.Record) *tail {
	n := len(records)
	snap := s.resSnap.Load()
	ra := resAssigner{res: snap.list, index: snap.index}
	var rs rows
	if err := rs.add(payload, 0); err != nil || rs.len() != n {
		return nil
	}
	d := dayLoad{rows: &rs, idx: make([]int32, n), seqs: make([]int64, n), res: make([]uint16, n)}
	for i := range records {
		id, err := ra.id(&records[i])
		if err != nil || ra.added != nil {
			return nil
		}
		d.idx[i], d.res[i] = int32(i), id
		for f, p := range recordStrings(&records[i]) {
			d.bytes[f] += len(*p)
		}
	}
	a := &arrowTail{}
	a.bufs.withArena(arenaBytes(d))
	b, _, err := arrowRecords(tailSchema, d, &a.bufs)
	if err != nil {
		a.bufs.free()
		return nil
	}
	a.batch = b
	return &tail{seqs: d.seqs, data: a}
}

// insertTailRows inserts the rows of tails, all of tail table table,
// through an Arrow view on c (a connection whose database is arrowDB), in
// one statement.
func insertTailRows(ctx context.Context, c *sql.Conn, table string, tails []*tail) error {
	batches := make([]arrow.RecordBatch, len(tails))
	for i, tl := range tails {
		batches[i] = tl.data.(*arrowTail).batch
	}
	return insertTail(ctx, c, table, batches)
}

// insertTail inserts batches into table through an Arrow view on c, a
// connection whose database is arrowDB, in one statement.
func insertTail(ctx context.Context, c *sql.Conn, table string, batches []arrow.RecordBatch) error {
	rdr, err := array.NewRecordReader(tailSchema, batches)
	if err != nil {
		return err
	}
	defer rdr.Release()
	name := "tail_in_" + strconv.FormatInt(arrowViews.Add(1), 10)
	release, err := registerView(c, rdr, name)
	if err != nil {
		return err
	}
	defer release()
	defer c.ExecContext(context.WithoutCancel(ctx), "DROP VIEW IF EXISTS "+name)
	_, err = c.ExecContext(ctx, "INSERT INTO "+table+" SELECT * FROM "+name)
	return err
}
