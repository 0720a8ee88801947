//go:build cgo

package duckdb

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/bits"
	"unsafe"

	"github.com/tether-hub/tether/internal/connlog"
)

// A stage frame is one Append's batch:
//
//	uint32 length of payload, little endian
//	uint32 CRC-32C of payload
//	payload: uvarint record count, then per record
//	  varint TimeGenerated (Unix ns), byte 0/1 DurationMs set, varint DurationMs if set,
//	  the string fields of recordStrings, each uvarint length + bytes
//
// The checksum tells a torn last frame (a crash mid-write) from a whole one.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errTorn is a frame cut short or damaged.
var errTorn = errors.New("torn or damaged frame")

// stringFieldCount is the number of Record's string fields.
const stringFieldCount = 23

// recordStrings are r's string fields in frame order.
func recordStrings(r *connlog.Record) [stringFieldCount]*string {
	return [...]*string{
		&r.ItemID, &r.Category, &r.OperationName, &r.Level, &r.ResultType,
		&r.ResultDescription, &r.Properties, &r.Location, &r.ResourceID,
		&r.SubscriptionID, &r.ResourceGroup, &r.Resource, &r.ResourceProvider,
		&r.ResourceType, &r.Type, &r.SourceSystem, &r.TenantID, &r.CorrelationID,
		&r.CallerIPAddress, &r.DeviceID, &r.Protocol, &r.SDKVersion, &r.SequenceNumber,
	}
}

// fieldIndex is the index in recordStrings of column col's field.
func fieldIndex(col string) int {
	var r connlog.Record
	f := stringField(&r, col)
	for i, p := range recordStrings(&r) {
		if p == f {
			return i
		}
	}
	panic("connlog/duckdb: no frame field for column " + col)
}

// Frame fields the loaders pack.
var (
	fieldProperties    = fieldIndex(connlog.ColProperties)
	fieldCorrelationID = fieldIndex(connlog.ColCorrelationID)
)

// encodeFrame appends the frame of records to b.
func encodeFrame(b []byte, records []connlog.Record) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	b = binary.AppendUvarint(b, uint64(len(records)))
	for i := range records {
		r := &records[i]
		b = binary.AppendVarint(b, r.TimeGenerated.UnixNano())
		if r.DurationMs != nil {
			b = append(b, 1)
			b = binary.AppendVarint(b, *r.DurationMs)
		} else {
			b = append(b, 0)
		}
		for _, p := range recordStrings(r) {
			b = binary.AppendUvarint(b, uint64(len(*p)))
			b = append(b, *p...)
		}
	}
	payload := b[start+8:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
	return b
}

// frameSize is the length of records' frame: its buffer is taken from
// the pool at that size (a size guessed from the last frame's was
// outgrown by one frame in a few, whose bytes then went to the Go heap).
func frameSize(records []connlog.Record) int {
	n := 8 + uvarintLen(uint64(len(records)))
	for i := range records {
		r := &records[i]
		n += varintLen(r.TimeGenerated.UnixNano()) + 1
		if r.DurationMs != nil {
			n += varintLen(*r.DurationMs)
		}
		for _, p := range recordStrings(r) {
			n += uvarintLen(uint64(len(*p))) + len(*p)
		}
	}
	return n
}

func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

func varintLen(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return uvarintLen(u)
}

// decodeFrame decodes the frame at the start of data and returns its
// records (their strings slices of data) and what follows it.
func decodeFrame(data []byte) ([]connlog.Record, []byte, error) {
	payload, rest, err := splitFrame(data)
	if err != nil {
		return nil, nil, err
	}
	var rs rows
	if err := rs.add(payload, 0); err != nil {
		return nil, nil, err
	}
	records := make([]connlog.Record, rs.len())
	for i := range records {
		records[i] = rs.record(i)
	}
	return records, rest, nil
}

// splitFrame checks the frame at the start of data and returns its
// payload (data's memory, not a copy) and what follows it; errTorn for a
// frame cut short or damaged.
func splitFrame(data []byte) (string, []byte, error) {
	if len(data) < 8 {
		return "", nil, errTorn
	}
	n := binary.LittleEndian.Uint32(data)
	if uint64(len(data)-8) < uint64(n) {
		return "", nil, errTorn
	}
	payload, rest := data[8:8+n], data[8+n:]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(data[4:]) {
		return "", nil, errTorn
	}
	// The checksum matched: what follows is a frame encodeFrame wrote, so
	// a decoding error later is a bug, not a crash.
	return unsafe.String(unsafe.SliceData(payload), len(payload)), rest, nil
}

// framePayload is the payload of the frame encodeFrame wrote into b (one
// frame): what the stage keeps in memory for the mover. It is b's memory,
// not a copy: b must not change while the payload is in use.
func framePayload(b []byte) string { return unsafe.String(&b[8], len(b)-8) }

// decoder reads a payload; b is never written (it may be a string's
// bytes).
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.err = errTorn
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.err = errTorn
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil || d.off >= len(d.b) {
		d.err = errTorn
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}
