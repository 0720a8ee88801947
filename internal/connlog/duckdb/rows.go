//go:build cgo

package duckdb

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/tether-hub/tether/internal/connlog"
)

// rows are the records a move (or a replay, or an in-memory Append)
// stores, as places in their frames' payloads (stage_codec.go): a frame
// and an offset, and the record's TimeGenerated, which dedup and the
// grouping by day read. No Go object is made a record and nothing here
// holds a pointer, so the collector neither allocates nor scans per
// record (a move that decoded every record into a connlog.Record, ~400
// bytes of string headers each, spent more of its CPU in the collector
// and in reading those headers back column by column than in DuckDB).
// The loaders decode one record at a time into a Record on the stack
// (decode) and write its values straight into their columns.
type rows struct {
	frames []string // payloads; must not change while rows refer to them
	at     []rowAt
	times  []int64 // TimeGenerated, Unix ns
	seqs   []int64 // _Seq: a frame's records take consecutive numbers
}

// rowAt is where a record starts: its frame and the offset in the payload.
type rowAt struct{ frame, off uint32 }

func (rs *rows) len() int { return len(rs.at) }

// reset forgets every record, keeping the memory for the next chunk.
func (rs *rows) reset() {
	clear(rs.frames) // no payload kept alive past its chunk
	rs.frames, rs.at, rs.times, rs.seqs = rs.frames[:0], rs.at[:0], rs.times[:0], rs.seqs[:0]
}

// add indexes the records of a frame's payload, whose first record's
// _Seq is seq0.
func (rs *rows) add(text string, seq0 int64) error {
	if len(text) > 1<<32-1 {
		return fmt.Errorf("frame of %d bytes", len(text))
	}
	d := decoder{b: unsafe.Slice(unsafe.StringData(text), len(text))}
	count := d.uvarint()
	if count > uint64(len(text)) {
		return fmt.Errorf("frame of %d bytes claims %d records", len(text), count)
	}
	fi := uint32(len(rs.frames))
	rs.frames = append(rs.frames, text)
	n := len(rs.at)
	for range count {
		off := d.off
		t := d.varint()
		d.skipRest()
		if d.err != nil {
			break
		}
		rs.at = append(rs.at, rowAt{fi, uint32(off)})
		rs.times = append(rs.times, t)
		rs.seqs = append(rs.seqs, seq0+int64(len(rs.at)-1-n))
	}
	if d.err != nil || d.off != len(text) {
		rs.frames, rs.at, rs.times, rs.seqs = rs.frames[:fi], rs.at[:n], rs.times[:n], rs.seqs[:n]
		return fmt.Errorf("undecodable frame (%v, %d of %d bytes read)", d.err, d.off, len(text))
	}
	return nil
}

// decode sets r's string fields to record i's (slices of its payload:
// valid while the frame is) and returns its DurationMs (set false: null).
// r's TimeGenerated and DurationMs are left as they are: the loaders take
// rs.times[i] and the value returned.
func (rs *rows) decode(i int, r *connlog.Record) (dur int64, set bool) {
	at := rs.at[i]
	text := rs.frames[at.frame]
	d := decoder{b: unsafe.Slice(unsafe.StringData(text), len(text)), off: int(at.off)}
	d.varint() // TimeGenerated: rs.times[i]
	dur, set = d.duration()
	for _, p := range recordStrings(r) {
		*p = d.str(text)
	}
	if d.err != nil {
		// add read the whole record already: the frame changed under it.
		panic("connlog/duckdb: a staged frame changed while its records were stored")
	}
	return dur, set
}

// itemID is record i's _ItemId (the first string of a record).
func (rs *rows) itemID(i int) string {
	at := rs.at[i]
	text := rs.frames[at.frame]
	d := decoder{b: unsafe.Slice(unsafe.StringData(text), len(text)), off: int(at.off)}
	d.varint()
	d.duration()
	id := d.str(text)
	if d.err != nil {
		panic("connlog/duckdb: a staged frame changed while its records were stored")
	}
	return id
}

// record is record i as a connlog.Record (its strings slices of the
// payload), for the paths that need one whole: the Appender loader,
// decodeFrame.
func (rs *rows) record(i int) connlog.Record {
	var r connlog.Record
	if dur, set := rs.decode(i, &r); set {
		r.DurationMs = &dur
	}
	r.TimeGenerated = unixNano(rs.times[i])
	return r
}

// duration reads the DurationMs flag and value.
func (d *decoder) duration() (int64, bool) {
	switch d.byte() {
	case 0:
		return 0, false
	case 1:
		return d.varint(), true
	}
	if d.err == nil {
		d.err = errors.New("bad DurationMs flag")
	}
	return 0, false
}

// str reads a string field of text (the payload d reads) without a copy.
func (d *decoder) str(text string) string {
	l := d.uvarint()
	if d.err == nil && l > uint64(len(d.b)-d.off) {
		d.err = errTorn
	}
	if d.err != nil {
		return ""
	}
	s := text[d.off : d.off+int(l)]
	d.off += int(l)
	return s
}

// skipRest skips a record's DurationMs and strings (after its time).
func (d *decoder) skipRest() {
	d.duration()
	for range stringFieldCount {
		l := d.uvarint()
		if d.err == nil && l > uint64(len(d.b)-d.off) {
			d.err = errTorn
		}
		if d.err != nil {
			return
		}
		d.off += int(l)
	}
}

// sharedTimes is the set of the times that occur more than once in
// times (nil: none). Of two records at one time the later is a
// back-step, a time not above every one before it: records come nearly
// in time order, so only the few back-steps' times are counted (a map
// lookup a record when there are any).
func sharedTimes(times []int64) map[int64]struct{} {
	var count map[int64]int
	hi := int64(math.MinInt64)
	for i, t := range times {
		if i > 0 && t <= hi {
			if count == nil {
				count = map[int64]int{}
			}
			count[t] = 0
		}
		hi = max(hi, t)
	}
	if count == nil {
		return nil
	}
	for _, t := range times {
		if c, ok := count[t]; ok {
			count[t] = c + 1
		}
	}
	var shared map[int64]struct{}
	for t, c := range count {
		if c >= 2 {
			if shared == nil {
				shared = map[int64]struct{}{}
			}
			shared[t] = struct{}{}
		}
	}
	return shared
}

// unixNano is the UTC time of Unix nanoseconds ns.
func unixNano(ns int64) time.Time { return time.Unix(0, ns).UTC() }
