package metrics

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// A backup holds what memory had not flushed yet, with its positions.
func TestBackupTo(t *testing.T) {
	clk := &clock{t: t0}
	s := openStore(t, filepath.Join(t.TempDir(), "h.db"), clk, time.Hour)
	for i := range 30 {
		ts := t0.Add(time.Duration(i) * time.Second)
		s.Apply("TETHER_TELEMETRY", uint64(i+1), func(add Adder) { add(TelemetryIngress, ts, 1) })
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := s.BackupTo(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	c := openStore(t, path, clk, time.Hour)
	if p := c.Position("TETHER_TELEMETRY"); p != 30 {
		t.Fatalf("position in the copy %d, want 30", p)
	}
	got := window(t, c, WindowQuery{Metric: TelemetryIngress, Aggregation: AggTotal, From: t0, To: t0.Add(time.Minute)})
	if got[0].Value != 30 {
		t.Fatalf("copy: %+v", got)
	}
}
