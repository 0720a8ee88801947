package app

import (
	"time"
)

// MigrationMeter turns a log migration's progress reports (records copied
// of total, LogStoreOptions.Progress) into what an operator waiting for it
// wants to read: how far, how fast, and how long still at that rate — for
// the first report (done 0: the size of the job), then at most one per
// Every, and the last.
type MigrationMeter struct {
	Every time.Duration
	// Line receives each report to show; left is 0 until a rate is known.
	Line func(done, total int64, perSec float64, left time.Duration)

	start, last time.Time
}

// Progress is the meter's LogStoreOptions.Progress.
func (m *MigrationMeter) Progress(done, total int64) {
	now := time.Now()
	if m.start.IsZero() {
		m.start = now
	}
	if done != 0 && done != total && now.Sub(m.last) < m.Every {
		return
	}
	m.last = now
	var perSec float64
	var left time.Duration
	if el := now.Sub(m.start); done > 0 && el > 0 {
		perSec = float64(done) / el.Seconds()
		left = time.Duration(float64(total-done) / perSec * float64(time.Second)).Round(time.Second)
	}
	m.Line(done, total, perSec, left)
}

// Started reports whether a migration ran (Progress was called).
func (m *MigrationMeter) Started() bool { return !m.start.IsZero() }

// Took is how long the migration has run.
func (m *MigrationMeter) Took() time.Duration { return time.Since(m.start).Round(time.Millisecond) }
