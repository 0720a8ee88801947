//go:build cgo && !duckdb_arrow

package duckdb

import (
	"context"

	"github.com/tether-hub/tether/internal/connlog"
)

// buildTail makes no tails in the Appender build: its readers move what
// is staged before they read (tail.go).
func (s *Store) buildTail(string, []connlog.Record) *tail { return nil }

// openTails has nothing to open without tails.
func (s *Store) openTails(context.Context, *stage) error { return nil }
