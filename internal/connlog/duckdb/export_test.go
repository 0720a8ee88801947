//go:build cgo

package duckdb

import (
	"context"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
)

// PackProperties and UnpackProperties expose the properties_s packing.
func PackProperties(r *connlog.Record) string             { return packProperties(r) }
func UnpackProperties(p string, r *connlog.Record) string { return unpackProperties(p, r) }

// AppendPacked is packProperties appended to dst (the Arrow loader's).
func AppendPacked(dst []byte, r *connlog.Record) []byte { return appendPacked(dst, r) }

// Pace is the back-pressure delay of an Append of n records with count
// records of size bytes staged and the last move at rate records/s.
func Pace(count int, size int64, rate float64, n, maxN int, maxBytes int64) time.Duration {
	st := &stage{count: count, size: size, rate: rate}
	return st.pace(n, maxN, maxBytes)
}

// PackSlow is packProperties replacing one key after the other.
func PackSlow(r *connlog.Record) string {
	if strings.IndexByte(r.Properties, 0x01) >= 0 {
		return rawPrefix + r.Properties
	}
	return packSlow(r.Properties, r)
}

// Tables lists the day tables, after moving what is staged.
func (s *Store) Tables() []string {
	if err := s.sync(context.Background()); err != nil {
		panic(err)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return append([]string(nil), s.tables...)
}

// Staged is how many records wait in the stage.
func (s *Store) Staged() int {
	n, _, _ := s.stage.staged()
	return n
}

// PackCorrelation and UnpackCorrelation expose the CorrelationId packing.
func PackCorrelation(r *connlog.Record) string             { return packCorrelation(r) }
func UnpackCorrelation(c string, r *connlog.Record) string { return unpackCorrelation(c, r) }
