//go:build cgo

package duckdb

import (
	"context"
	"strings"

	"github.com/tether-hub/tether/internal/connlog"
)

// PackProperties and UnpackProperties expose the properties_s packing.
func PackProperties(r *connlog.Record) string             { return packProperties(r) }
func UnpackProperties(p string, r *connlog.Record) string { return unpackProperties(p, r) }

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
