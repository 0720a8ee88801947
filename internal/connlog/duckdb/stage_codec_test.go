//go:build cgo

package duckdb

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
)

// fullRecord sets every field of a Record (by reflection, so a field
// added to Record and missing from the frame fails the round trip).
func fullRecord(i int) connlog.Record {
	var r connlog.Record
	v := reflect.ValueOf(&r).Elem()
	for f := 0; f < v.NumField(); f++ {
		if v.Field(f).Kind() == reflect.String {
			v.Field(f).SetString(v.Type().Field(f).Name + "-" + string(rune('a'+i%26)) + "\x00\x01é")
		}
	}
	r.TimeGenerated = time.Date(2026, 12, 6, 1, 2, 3, 456789+i, time.UTC)
	if i%2 == 0 {
		d := int64(-i * 1000)
		r.DurationMs = &d
	}
	return r
}

func TestFrameRoundTrip(t *testing.T) {
	if n := reflect.TypeFor[connlog.Record]().NumField(); n != stringFieldCount+2 {
		t.Fatalf("Record has %d fields; the frame has %d strings, a time and a duration", n, stringFieldCount)
	}
	var recs []connlog.Record
	for i := range 5 {
		recs = append(recs, fullRecord(i))
	}
	b := encodeFrame(nil, recs[:2])
	b = encodeFrame(b, recs[2:])
	got, rest, err := decodeFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	more, rest, err := decodeFrame(rest)
	if err != nil || len(rest) != 0 {
		t.Fatalf("second frame: %v, %d bytes after", err, len(rest))
	}
	got = append(got, more...)
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, recs)
	}
	// A frame cut anywhere, or with a byte changed, is torn.
	one := encodeFrame(nil, recs[:1])
	for cut := range len(one) {
		if _, _, err := decodeFrame(one[:cut]); !errors.Is(err, errTorn) {
			t.Fatalf("frame cut at %d of %d: err %v", cut, len(one), err)
		}
	}
	bad := bytes.Clone(one)
	bad[len(bad)/2] ^= 0x40
	if _, _, err := decodeFrame(bad); !errors.Is(err, errTorn) {
		t.Fatalf("damaged frame: err %v", err)
	}
}

// FuzzDecodeFrame: whatever the bytes, decoding returns records or an
// error, never panics; what it decodes survives a round trip.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(encodeFrame(nil, []connlog.Record{fullRecord(0), fullRecord(1)}))
	f.Add(encodeFrame(nil, nil))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, rest, err := decodeFrame(data)
		if err != nil {
			return
		}
		if n, enc := frameSize(recs), encodeFrame(nil, recs); n != len(enc) {
			t.Fatalf("frameSize %d, frame of %d bytes", n, len(enc))
		}
		again, _, err := decodeFrame(encodeFrame(nil, recs))
		if err != nil || len(again) != len(recs) || (len(recs) > 0 && !reflect.DeepEqual(again, recs)) {
			t.Fatalf("round trip of %d decoded records: %d, %v", len(recs), len(again), err)
		}
		_ = rest
	})
}

// TestFrameSize: the size Append takes a buffer of is the frame's, for
// varints of every length (long strings, times before 1970, large and
// negative durations).
func TestFrameSize(t *testing.T) {
	var recs []connlog.Record
	for i := range 40 {
		r := fullRecord(i)
		r.Properties = string(bytes.Repeat([]byte("x"), i*i*i))
		if i%3 == 0 {
			r.TimeGenerated = time.Unix(-int64(i)*1e6, 0)
		}
		if r.DurationMs != nil {
			*r.DurationMs <<= i
		}
		recs = append(recs, r)
		if n, enc := frameSize(recs), encodeFrame(nil, recs); n != len(enc) {
			t.Fatalf("%d records: frameSize %d, frame of %d bytes", len(recs), n, len(enc))
		}
	}
	if n, enc := frameSize(nil), encodeFrame(nil, nil); n != len(enc) {
		t.Fatalf("no records: frameSize %d, frame of %d bytes", n, len(enc))
	}
}
