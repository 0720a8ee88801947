package app

import (
	"testing"
	"time"
)

// After a burst the settler compacts once, when the hub has allocated
// little for settleFor (new connects or a busy second start the count
// again), or at settleMax; never without a burst.
func TestSettler(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC)
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	var s settler
	if _, ok := s.observe(sec(0), 0, 0); ok {
		t.Fatal("compacted without a burst")
	}
	s.burst(sec(0))
	busy := uint64(4 << 20)
	steps := []struct {
		connects, allocated uint64
		want                bool
	}{
		{0, busy, false},      // 1: working off the burst
		{0, 100 << 10, false}, // 2: quiet from here
		{0, 100 << 10, false}, // 3
		{3, 100 << 10, false}, // 4: a connect: start again
		{0, 100 << 10, false}, // 5: quiet from here
		{0, 200 << 10, false}, // 6
		{0, busy, false},      // 7: busy: start again
		{0, 0, false},         // 8: quiet from here
		{0, 0, false},         // 9
		{0, 0, false},         // 10
		{0, 0, true},          // 11: 3 s quiet
		{0, 0, false},         // 12: once per burst
	}
	for i, st := range steps {
		after, ok := s.observe(sec(i+1), st.connects, st.allocated)
		if ok != st.want {
			t.Fatalf("second %d: compact %v, want %v", i+1, ok, st.want)
		}
		if ok && after != 11*time.Second {
			t.Errorf("after %s, want 11s", after)
		}
	}

	// A hub that never settles is compacted at settleMax.
	s.burst(sec(100))
	n := 0
	for i := 101; i <= 100+int(settleMax/time.Second); i++ {
		if _, ok := s.observe(sec(i), 0, busy); ok {
			n++
			if got := sec(i).Sub(sec(100)); got != settleMax {
				t.Errorf("compacted %s after the burst, want %s", got, settleMax)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d compactions of a busy hub, want 1", n)
	}
}
