package main

import (
	"runtime"
	"testing"
	"time"
)

func TestPacedPercent(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		name       string
		live, rate uint64
		ceiling    uint64
		want       int
	}{
		{"idle hub: the base", 50 * mb, mb / 5, 1 << 30, 200},
		{"5,000 events/s: 4 s of allocation", 100 * mb, 150 * mb, 1 << 30, 600},
		{"the ceiling bounds the goal", 100 * mb, 150 * mb, 400 * mb, 300},
		{"a ceiling under the base goal leaves the base", 300 * mb, 150 * mb, 400 * mb, 200},
		{"no heap yet", 0, 150 * mb, 1 << 30, 200},
	} {
		if got := pacedPercent(c.live, c.rate, 200, 4*time.Second, c.ceiling); got != c.want {
			t.Errorf("%s: pacedPercent = %d, want %d", c.name, got, c.want)
		}
	}
}

// fakeTimer is the pacer's re-check, fired by the test.
type fakeTimer struct {
	d       time.Duration
	f       func()
	stopped bool
}

func TestGCPacerRaisesUnderLoadAndRestoresAfter(t *testing.T) {
	const mb = 1 << 20
	var set []int
	var timers []*fakeTimer
	var allocs uint64 = 150 * mb
	t0 := time.Unix(1000, 0)
	now := t0
	p := &gcPacer{base: 200, interval: 4 * time.Second, ceiling: 1 << 30, percent: 200, lastTime: t0,
		now:  func() time.Time { return now },
		set:  func(v int) int { set = append(set, v); return 0 },
		read: func() (uint64, uint64) { return allocs, 100 * mb },
		after: func(d time.Duration, f func()) func() bool {
			ft := &fakeTimer{d: d, f: f}
			timers = append(timers, ft)
			return func() bool { ft.stopped = true; return true }
		}}
	// A GC 1 s in, with 150 MB allocated over a 100 MB live heap.
	now = t0.Add(time.Second)
	p.afterGC()
	if len(set) != 1 || set[0] != 600 {
		t.Fatalf("after a GC at 150 MB/s: percents set %v, want [600]", set)
	}
	if len(timers) != 1 || timers[0].d != 8*time.Second {
		t.Fatalf("re-checks armed: %d, want one in 8 s", len(timers))
	}
	// The load stops: no GC comes, and the re-check 8 s later finds 1 MB
	// allocated since.
	allocs += mb
	now = now.Add(8 * time.Second)
	timers[0].f()
	if got := set[len(set)-1]; got != 200 {
		t.Fatalf("after the load stopped: last percent set %d, want the base 200 (all: %v)", got, set)
	}
	if p.recheck != nil {
		t.Fatal("a re-check is still armed at the base percent")
	}
	// Raised again, then stopped: the base comes back and the re-check is stopped.
	allocs += 200 * mb
	now = now.Add(time.Second)
	p.afterGC()
	last := timers[len(timers)-1]
	p.stop()
	if got := set[len(set)-1]; got != 200 || !last.stopped {
		t.Fatalf("after stop: last percent %d (want 200), re-check stopped %v", got, last.stopped)
	}
}

func TestGCPacerObservesEveryGC(t *testing.T) {
	p := &gcPacer{base: 200, interval: 4 * time.Second, ceiling: 1 << 30, percent: 200, lastTime: time.Now(),
		set:  func(int) int { return 0 }, // leave this process's GC alone
		read: readHeap, now: time.Now,
		after: func(time.Duration, func()) func() bool { return func() bool { return true } }}
	p.arm()
	deadline := time.Now().Add(time.Minute)
	for {
		runtime.GC()
		p.mu.Lock()
		n := p.gcs
		p.mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pacer saw %d GCs in a minute of runtime.GC calls, want ≥ 3", n)
		}
		runtime.Gosched()
	}
	p.stop()
	p.mu.Lock()
	n := p.gcs
	p.mu.Unlock()
	for range 3 {
		runtime.GC()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gcs > n+1 { // a finalizer already queued may still run once
		t.Fatalf("the pacer kept observing after stop: %d GCs, then %d", n, p.gcs)
	}
}
