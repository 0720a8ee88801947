package connlog

import (
	"context"
	"time"
)

// LogStore keeps records. Implementations live in subpackages named after
// their dependency (duckdb/, sqlite/) and pass logstoretest.Run. They are safe for
// concurrent use.
type LogStore interface {
	// Append stores records in one transaction: all or none. A record
	// whose ItemID the store already holds (from an earlier call or earlier
	// in the same slice) is skipped, so appending again is harmless.
	Append(ctx context.Context, records []Record) error
	// Find returns the records matching f: the newest f.Limit of them
	// (all when Limit ≤ 0), ordered oldest → newest by TimeGenerated, ties
	// in append order — the order `tether logs` prints, like tail(1).
	Find(ctx context.Context, f Filter) ([]Record, error)
	// DeleteBefore removes records with TimeGenerated < t (retention) and
	// says how many it removed.
	DeleteBefore(ctx context.Context, t time.Time) (int64, error)
	// Close releases the store; calls after it fail.
	Close() error
}

// Sink is what a Writer needs of a destination: LogStore's Append and
// DeleteBefore. Besides stores, diagnostic settings' destinations (files,
// subjects) implement it.
type Sink interface {
	Append(ctx context.Context, records []Record) error
	DeleteBefore(ctx context.Context, t time.Time) (int64, error)
}

// Filter selects records. Zero fields do not filter; string fields match
// exactly (case-sensitive, like KQL ==).
type Filter struct {
	DeviceID string
	Category string    // one of Categories
	Level    string    // LevelInformation, LevelError
	Since    time.Time // inclusive
	Until    time.Time // exclusive
	Limit    int       // the newest Limit records; ≤ 0: all
}

// Match reports whether r passes f's field filters (not Limit): what
// stores implement, written once for tests and in-memory consumers.
func (f Filter) Match(r Record) bool {
	switch {
	case f.DeviceID != "" && r.DeviceID != f.DeviceID,
		f.Category != "" && r.Category != f.Category,
		f.Level != "" && r.Level != f.Level,
		!f.Since.IsZero() && r.TimeGenerated.Before(f.Since),
		!f.Until.IsZero() && !r.TimeGenerated.Before(f.Until):
		return false
	}
	return true
}
