//go:build cgo && duckdb_arrow

package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strconv"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/tether-hub/tether/internal/connlog"
)

// arrowBatch is the most records of one Arrow record batch (string
// offsets are 32-bit; smaller batches also keep the copies small).
const arrowBatch = 16 << 10

// arrowViews numbers the views prepareLoad registers.
var arrowViews atomic.Int64

// arrowDB is the in-memory database the Arrow views live in: DuckDB
// makes a registered Arrow stream a (non-temporary) view, which a file
// database's WAL cannot hold ("Cannot serialize a table function with
// process-local bind input"), and a transaction may write to one
// database only, so they are made there, before the move's transaction.
const arrowDB = "tether_arrow"

// arrowLoad is the loader of the duckdb_arrow build: each day's columns go
// to DuckDB as Arrow arrays (a buffer a column, no call per value),
// registered as a view that an INSERT … SELECT reads.
type arrowLoad struct {
	loads    []dayLoad
	views    []string
	releases []func()
	readers  []array.RecordReader
	bytes    []int64 // of each load (estimate)
	bufs     colBufs // the string columns' memory, reused after close
}

func prepareLoad(ctx context.Context, w *sql.Conn, loads []dayLoad) (_ loader, err error) {
	l := &arrowLoad{loads: loads}
	defer func() {
		if err != nil {
			l.close(ctx, w)
		}
	}()
	var main string
	if err := w.QueryRowContext(ctx, "SELECT current_database()").Scan(&main); err != nil {
		return nil, err
	}
	if _, err := w.ExecContext(ctx, "ATTACH IF NOT EXISTS ':memory:' AS "+arrowDB); err != nil {
		return nil, err
	}
	if _, err := w.ExecContext(ctx, "USE "+arrowDB); err != nil {
		return nil, err
	}
	defer func() {
		if _, uerr := w.ExecContext(context.WithoutCancel(ctx), "USE "+quote(main)); uerr != nil && err == nil {
			err = uerr
		}
	}()
	schema := arrowSchema()
	for _, d := range loads {
		rdr, n, err := arrowReader(schema, d, &l.bufs)
		if err != nil {
			return nil, err
		}
		l.readers, l.bytes = append(l.readers, rdr), append(l.bytes, n)
		view := "load_" + strconv.FormatInt(arrowViews.Add(1), 10)
		err = w.Raw(func(dc any) error {
			conn, ok := dc.(driver.Conn)
			if !ok {
				return fmt.Errorf("unexpected driver connection %T", dc)
			}
			a, err := duckdb.NewArrowFromConn(conn)
			if err != nil {
				return err
			}
			release, err := a.RegisterView(rdr, view)
			if err != nil {
				return err
			}
			l.views, l.releases = append(l.views, view), append(l.releases, release)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("arrow view: %w", err)
		}
	}
	return l, nil
}

func (l *arrowLoad) load(ctx context.Context, w *sql.Conn, i int) (int64, error) {
	if _, err := w.ExecContext(ctx, "INSERT INTO "+quote(l.loads[i].table)+" SELECT * FROM "+arrowDB+".main."+l.views[i]); err != nil {
		return 0, err
	}
	return l.bytes[i], nil
}

func (l *arrowLoad) close(ctx context.Context, w *sql.Conn) {
	for _, v := range l.views {
		// A view left behind (the writer connection lost) is never read:
		// names are not reused.
		w.ExecContext(context.WithoutCancel(ctx), "DROP VIEW IF EXISTS "+arrowDB+".main."+v)
	}
	for _, r := range l.releases {
		r()
	}
	for _, r := range l.readers {
		r.Release()
	}
	l.views, l.releases, l.readers = nil, nil, nil
	// DuckDB copied the rows into its storage in the INSERT; the views
	// that pointed at the buffers are gone.
	l.bufs.free()
}

// arrowReader is d's records as Arrow record batches of at most
// arrowBatch, and their size (estimate).
func arrowReader(schema *arrow.Schema, d dayLoad, bufs *colBufs) (array.RecordReader, int64, error) {
	var batches []arrow.RecordBatch
	var bytes int64
	defer func() {
		for _, b := range batches {
			b.Release()
		}
	}()
	for lo := 0; lo < len(d.recs); lo += arrowBatch {
		hi := min(lo+arrowBatch, len(d.recs))
		b, n := arrowRecords(schema, d.recs[lo:hi], d.seqs[lo:hi], d.res[lo:hi], bufs)
		batches = append(batches, b)
		bytes += n
	}
	rdr, err := array.NewRecordReader(schema, batches)
	return rdr, bytes, err
}

// arrowSchema is the day tables' columns as Arrow fields, in table order.
func arrowSchema() *arrow.Schema {
	fields := make([]arrow.Field, 0, appendColumnCount())
	for _, c := range storedColumns {
		switch c.Type {
		case connlog.TypeDatetime:
			fields = append(fields, arrow.Field{Name: c.Name, Type: arrow.PrimitiveTypes.Int64})
		case connlog.TypeLong:
			fields = append(fields, arrow.Field{Name: c.Name, Type: arrow.PrimitiveTypes.Int64, Nullable: true})
		default:
			fields = append(fields, arrow.Field{Name: c.Name, Type: arrow.BinaryTypes.String})
		}
	}
	fields = append(fields,
		arrow.Field{Name: colSeq, Type: arrow.PrimitiveTypes.Int64},
		arrow.Field{Name: colDeviceKey, Type: arrow.PrimitiveTypes.Uint32},
		arrow.Field{Name: colRes, Type: arrow.PrimitiveTypes.Uint16})
	return arrow.NewSchema(fields, nil)
}

// arrowRecords is one record batch of recs and its size (estimate).
func arrowRecords(schema *arrow.Schema, recs []*connlog.Record, seqs []int64, res []uint16, bufs *colBufs) (arrow.RecordBatch, int64) {
	n := len(recs)
	cols := make([]arrow.Array, 0, appendColumnCount())
	var bytes int64
	for _, c := range storedColumns {
		switch {
		case c.Name == connlog.ColTimeGenerated:
			v := make([]int64, n)
			for i, r := range recs {
				v[i] = r.TimeGenerated.UnixNano()
			}
			cols = append(cols, int64Array(v, nil))
			bytes += 8 * int64(n)
		case c.Name == connlog.ColDurationMs:
			v := make([]int64, n)
			valid := make([]byte, (n+7)/8)
			nulls := 0
			for i, r := range recs {
				if r.DurationMs != nil {
					v[i] = *r.DurationMs
					valid[i/8] |= 1 << (i % 8)
				} else {
					nulls++
				}
			}
			cols = append(cols, int64Array(v, &nullable{valid, nulls}))
			bytes += 8 * int64(n)
		case c.Name == connlog.ColProperties:
			// Packing never adds more than rawPrefix.
			size := 0
			for _, r := range recs {
				size += len(r.Properties) + len(rawPrefix)
			}
			a, used := stringArray(bufs, recs, size, func(dst []byte, r *connlog.Record) []byte { return appendPacked(dst, r) })
			cols = append(cols, a)
			bytes += used
		case c.Name == connlog.ColCorrelationID:
			size := 0
			for _, r := range recs {
				size += len(r.CorrelationID) + len(corrRaw)
			}
			a, used := stringArray(bufs, recs, size, func(dst []byte, r *connlog.Record) []byte { return append(dst, packCorrelation(r)...) })
			cols = append(cols, a)
			bytes += used
		default:
			off := stringOffset(c.Name)
			size := 0
			for _, r := range recs {
				size += len(*fieldAt(r, off))
			}
			a, used := stringArray(bufs, recs, size, func(dst []byte, r *connlog.Record) []byte { return append(dst, *fieldAt(r, off)...) })
			cols = append(cols, a)
			bytes += used
		}
	}
	keys := make([]uint32, n)
	for i, r := range recs {
		keys[i] = DeviceKey(r.DeviceID)
	}
	cols = append(cols, int64Array(seqs, nil),
		array.NewUint32Data(array.NewData(arrow.PrimitiveTypes.Uint32, n,
			[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Uint32Traits.CastToBytes(keys))}, nil, 0, 0)),
		array.NewUint16Data(array.NewData(arrow.PrimitiveTypes.Uint16, n,
			[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Uint16Traits.CastToBytes(res))}, nil, 0, 0)))
	b := array.NewRecordBatch(schema, cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return b, bytes + 14*int64(n)
}

type nullable struct {
	valid []byte
	nulls int
}

func int64Array(v []int64, nv *nullable) arrow.Array {
	var valid *memory.Buffer
	nulls := 0
	if nv != nil && nv.nulls > 0 {
		valid, nulls = memory.NewBufferBytes(nv.valid), nv.nulls
	}
	return array.NewInt64Data(array.NewData(arrow.PrimitiveTypes.Int64, len(v),
		[]*memory.Buffer{valid, memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(v))}, nil, nulls, 0))
}

// stringArray is a string column of recs: one data buffer of at most
// size bytes, which add appends each record's value to, and the offsets.
// It returns the array and the data's length.
func stringArray(bufs *colBufs, recs []*connlog.Record, size int, add func([]byte, *connlog.Record) []byte) (arrow.Array, int64) {
	offBytes := bufs.get(4 * (len(recs) + 1))
	offsets := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(offBytes))), len(recs)+1)
	offsets[0] = 0
	data := bufs.get(size)[:0]
	for i, r := range recs {
		data = add(data, r)
		offsets[i+1] = int32(len(data))
	}
	if len(data) > size {
		// add wrote past its bound (a bug): data grew into Go memory,
		// which the GC keeps alive through the Arrow buffer; the pooled
		// one it was copied from goes back.
		bufs.dropLast()
	}
	return array.NewStringData(array.NewData(arrow.BinaryTypes.String, len(recs),
		[]*memory.Buffer{nil, memory.NewBufferBytes(offBytes), memory.NewBufferBytes(data)}, nil, 0, 0)), int64(len(data))
}

// colBufs hands out the byte buffers of a move's string columns
// (bufpool.go) and gives them back once DuckDB has copied the rows.
type colBufs struct{ used []*[]byte }

// get returns a buffer of n bytes (contents undefined).
func (c *colBufs) get(n int) []byte {
	b := getBuf(n)
	c.used = append(c.used, b)
	return *b
}

// dropLast gives the last buffer handed out back now (nothing refers to
// it any more).
func (c *colBufs) dropLast() {
	putBuf(c.used[len(c.used)-1])
	c.used = c.used[:len(c.used)-1]
}

// free gives every buffer back.
func (c *colBufs) free() {
	for _, b := range c.used {
		putBuf(b)
	}
	c.used = nil
}

// stringOffset is the offset in connlog.Record of the string field of
// column col.
func stringOffset(col string) uintptr {
	var r connlog.Record
	return uintptr(unsafe.Pointer(stringField(&r, col))) - uintptr(unsafe.Pointer(&r))
}

// fieldAt is r's string field at offset off (stringOffset): the loader's
// per-value access without stringField's switch on the column name.
func fieldAt(r *connlog.Record, off uintptr) *string {
	return (*string)(unsafe.Add(unsafe.Pointer(r), off))
}
