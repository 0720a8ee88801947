//go:build cgo && duckdb_arrow

package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/tether-hub/tether/internal/connlog"
)

// arrowViews numbers the views prepareLoad registers.
var arrowViews atomic.Int64

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
	schema := arrowSchema()
	for _, d := range loads {
		rdr, n, err := arrowReader(schema, d, &l.bufs)
		if err != nil {
			return nil, err
		}
		l.readers, l.bytes = append(l.readers, rdr), append(l.bytes, n)
		view, release, err := registerArrow(ctx, w, rdr)
		if err != nil {
			return nil, err
		}
		l.views, l.releases = append(l.views, view), append(l.releases, release)
	}
	return l, nil
}

// registerArrow makes rdr a view in arrowDB, named "tether_arrow.main.…",
// and returns its name and what frees it (after the view is dropped).
func registerArrow(ctx context.Context, c *sql.Conn, rdr array.RecordReader) (view string, release func(), err error) {
	var main string
	if err := c.QueryRowContext(ctx, "SELECT current_database()").Scan(&main); err != nil {
		return "", nil, err
	}
	if _, err := c.ExecContext(ctx, "ATTACH IF NOT EXISTS ':memory:' AS "+arrowDB); err != nil {
		return "", nil, err
	}
	if _, err := c.ExecContext(ctx, "USE "+arrowDB); err != nil {
		return "", nil, err
	}
	defer func() {
		if _, uerr := c.ExecContext(context.WithoutCancel(ctx), "USE "+quote(main)); uerr != nil && err == nil {
			// The connection would resolve names in arrowDB: not back to
			// the pool.
			_ = c.Raw(func(any) error { return driver.ErrBadConn })
			if release != nil {
				release()
			}
			view, release, err = "", nil, uerr
		}
	}()
	name := "load_" + strconv.FormatInt(arrowViews.Add(1), 10)
	if release, err = registerView(c, rdr, name); err != nil {
		return "", nil, err
	}
	return arrowDB + ".main." + name, release, nil
}

// registerView makes rdr the view name in c's current database.
func registerView(c *sql.Conn, rdr array.RecordReader, name string) (release func(), err error) {
	err = c.Raw(func(dc any) error {
		conn, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		a, err := duckdb.NewArrowFromConn(conn)
		if err != nil {
			return err
		}
		release, err = a.RegisterView(rdr, name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("arrow view: %w", err)
	}
	return release, nil
}

func (l *arrowLoad) load(ctx context.Context, w *sql.Conn, i int) (int64, error) {
	if _, err := w.ExecContext(ctx, "INSERT INTO "+quote(l.loads[i].table)+" SELECT * FROM "+l.views[i]); err != nil {
		return 0, err
	}
	return l.bytes[i], nil
}

func (l *arrowLoad) close(ctx context.Context, w *sql.Conn) {
	for _, v := range l.views {
		// A view left behind (the writer connection lost) is never read:
		// names are not reused.
		w.ExecContext(context.WithoutCancel(ctx), "DROP VIEW IF EXISTS "+v)
	}
	for _, r := range l.releases {
		r()
	}
	for _, r := range l.readers {
		r.Release()
	}
	l.views, l.releases, l.readers = nil, nil, nil
	// DuckDB copied the rows into its storage in the INSERT; the views
	// that pointed at the buffers are gone. (A column that outgrew its
	// bound, a bug, grew into Go memory, which its Arrow buffer kept.)
	l.bufs.free()
}

// arrowReader is d's records as one Arrow record batch, and its size
// (estimate).
func arrowReader(schema *arrow.Schema, d dayLoad, bufs *colBufs) (array.RecordReader, int64, error) {
	b, n, err := arrowRecords(schema, d, bufs)
	if err != nil {
		return nil, 0, err
	}
	defer b.Release()
	rdr, err := array.NewRecordReader(schema, []arrow.RecordBatch{b})
	return rdr, n, err
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

// strColumn is a string column being filled: its offsets and data, and
// what it holds (kind, and for colField the field's offset in a Record).
type strColumn struct {
	kind    int
	field   uintptr
	offsets []int32
	data    []byte
}

const (
	colField = iota
	colPacked
	colCorrelation
)

// arrowRecords is d's records as a record batch, and its size
// (estimate). One pass over the records: each is decoded into a Record
// on the stack (its strings slices of its frame) and its values appended
// to every column, sized before from d.bytes.
func arrowRecords(schema *arrow.Schema, d dayLoad, bufs *colBufs) (arrow.RecordBatch, int64, error) {
	n := len(d.idx)
	times := int64s(bufs, n)
	durs := int64s(bufs, n)
	valid := bufs.get((n + 7) / 8)
	clear(valid)
	keys := unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(bufs.get(4*n+4)))), n)
	var strs []strColumn
	for _, c := range storedColumns {
		if c.Type != connlog.TypeString {
			continue
		}
		sc := strColumn{kind: colField}
		var size int
		switch c.Name {
		case connlog.ColProperties:
			// Packing never adds more than rawPrefix.
			sc.kind, size = colPacked, d.bytes[fieldProperties]+len(rawPrefix)*n
		case connlog.ColCorrelationID:
			sc.kind, size = colCorrelation, d.bytes[fieldCorrelationID]+len(corrRaw)*n
		default:
			sc.field = stringOffset(c.Name)
			size = d.bytes[fieldIndex(c.Name)]
		}
		if size > math.MaxInt32 {
			return nil, 0, fmt.Errorf("column %s of %d bytes in one move (32-bit offsets)", c.Name, size)
		}
		sc.offsets = unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(bufs.get(4*n+4)))), n+1)
		sc.offsets[0] = 0
		sc.data = bufs.get(size)[:0]
		strs = append(strs, sc)
	}
	nulls := 0
	var r connlog.Record
	for j, i := range d.idx {
		dur, set := d.rows.decode(int(i), &r)
		times[j] = d.rows.times[i]
		if set {
			durs[j] = dur
			valid[j/8] |= 1 << (j % 8)
		} else {
			durs[j] = 0
			nulls++
		}
		keys[j] = DeviceKey(r.DeviceID)
		for k := range strs {
			c := &strs[k]
			switch c.kind {
			case colField:
				c.data = append(c.data, *fieldAt(&r, c.field)...)
			case colPacked:
				c.data = appendPacked(c.data, &r)
			case colCorrelation:
				c.data = append(c.data, packCorrelation(&r)...)
			}
			c.offsets[j+1] = int32(len(c.data))
		}
	}
	cols := make([]arrow.Array, 0, appendColumnCount())
	var bytes int64
	k := 0
	for _, c := range storedColumns {
		switch c.Name {
		case connlog.ColTimeGenerated:
			cols = append(cols, int64Array(times, nil))
		case connlog.ColDurationMs:
			cols = append(cols, int64Array(durs, &nullable{valid, nulls}))
		default:
			sc := &strs[k]
			k++
			cols = append(cols, array.NewStringData(array.NewData(arrow.BinaryTypes.String, n,
				[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(sc.offsets)), memory.NewBufferBytes(sc.data)}, nil, 0, 0)))
			bytes += int64(len(sc.data))
		}
	}
	cols = append(cols, int64Array(d.seqs, nil),
		array.NewUint32Data(array.NewData(arrow.PrimitiveTypes.Uint32, n,
			[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Uint32Traits.CastToBytes(keys))}, nil, 0, 0)),
		array.NewUint16Data(array.NewData(arrow.PrimitiveTypes.Uint16, n,
			[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Uint16Traits.CastToBytes(d.res))}, nil, 0, 0)))
	b := array.NewRecordBatch(schema, cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return b, bytes + 30*int64(n), nil
}

// int64s is a buffer of n int64s from bufs.
func int64s(bufs *colBufs, n int) []int64 {
	return unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(bufs.get(8*n+8)))), n)
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

// colBufs hands out the byte buffers of a move's string columns
// (bufpool.go) and gives them back once DuckDB has copied the rows.
// With an arena (a tail's columns: arenaBytes) they are cut from that one
// buffer, 8-byte aligned.
type colBufs struct {
	used  []*[]byte
	arena []byte
}

// get returns a buffer of n bytes (contents undefined).
func (c *colBufs) get(n int) []byte {
	if c.arena != nil {
		if m := (n + 7) &^ 7; m <= len(c.arena) {
			b := c.arena[:n:n]
			c.arena = c.arena[m:]
			return b
		}
	}
	b := getBuf(n)
	c.used = append(c.used, b)
	return *b
}

// withArena makes c cut the next n bytes of buffers from one.
func (c *colBufs) withArena(n int) {
	b := getBuf(n)
	c.used = append(c.used, b)
	c.arena = *b
}

// arenaBytes is what arrowRecords takes from colBufs for d, rounded as
// get does.
func arenaBytes(d dayLoad) int {
	n := len(d.idx)
	a := func(k int) int { return (k + 7) &^ 7 }
	total := 2*a(8*n+8) + a((n+7)/8) + a(4*n+4)
	for _, c := range storedColumns {
		if c.Type != connlog.TypeString {
			continue
		}
		size := 0
		switch c.Name {
		case connlog.ColProperties:
			size = d.bytes[fieldProperties] + len(rawPrefix)*n
		case connlog.ColCorrelationID:
			size = d.bytes[fieldCorrelationID] + len(corrRaw)*n
		default:
			size = d.bytes[fieldIndex(c.Name)]
		}
		total += a(4*n+4) + a(size)
	}
	return total
}

// free gives every buffer back.
func (c *colBufs) free() {
	for _, b := range c.used {
		putBuf(b)
	}
	c.used, c.arena = nil, nil
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
