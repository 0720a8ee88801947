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

// fakeRuntime is the pacer's view of the runtime and clock, driven by the
// test: gc allocates mb MB over d, then runs a GC.
type fakeRuntime struct {
	t      *testing.T
	p      *gcPacer
	now    time.Time
	heap   heapReading
	set    []int
	timers []*fakeTimer
}

type fakeTimer struct {
	d       time.Duration
	f       func()
	stopped bool
}

const mb = 1 << 20

func newFakeRuntime(t *testing.T) *fakeRuntime {
	r := &fakeRuntime{t: t, now: time.Unix(1000, 0), heap: heapReading{live: 100 * mb}}
	r.p = &gcPacer{base: 200, interval: 4 * time.Second, ceiling: 1 << 30, percent: 200, lastTime: r.now,
		now:  func() time.Time { return r.now },
		set:  func(v int) int { r.set = append(r.set, v); return 0 },
		read: func() heapReading { return r.heap },
		after: func(d time.Duration, f func()) func() bool {
			ft := &fakeTimer{d: d, f: f}
			r.timers = append(r.timers, ft)
			return func() bool { ft.stopped = true; return true }
		}}
	return r
}

func (r *fakeRuntime) gc(allocMB uint64, d time.Duration) {
	r.heap.allocs += allocMB * mb
	r.now = r.now.Add(d)
	r.p.afterGC()
}

func (r *fakeRuntime) percent() int {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	return r.p.percent
}

func TestGCPacerPacesSustainedLoadOnly(t *testing.T) {
	r := newFakeRuntime(t)
	// 150 MB/s over a 100 MB live heap: GCs every second at the base
	// percent until the rate has held for the interval (4 s).
	for i := range 3 {
		r.gc(150, time.Second)
		if got := r.percent(); got != 200 {
			t.Fatalf("GC %d, %d s into the load: percent %d, want the base 200 until the load has held 4 s", i+1, i+1, got)
		}
	}
	r.gc(150, time.Second)
	if got := r.percent(); got != 600 {
		t.Fatalf("4 s into 150 MB/s: percent %d, want 600 (the next GC 4 s later)", got)
	}
	if n := len(r.timers); n != 1 || r.timers[0].d != 8*time.Second {
		t.Fatalf("re-checks armed: %d, want one in 8 s", n)
	}
	// The load stops: no GC comes, and the re-check 8 s later finds 1 MB
	// allocated since.
	r.heap.allocs += mb
	r.now = r.now.Add(8 * time.Second)
	r.timers[0].f()
	if got := r.percent(); got != 200 {
		t.Fatalf("after the load stopped: percent %d, want the base 200 (set: %v)", got, r.set)
	}
	if r.p.recheck != nil {
		t.Fatal("a re-check is still armed at the base percent")
	}
	// A burst of 3 s (a connect storm) never raises it.
	for range 3 {
		r.gc(150, time.Second)
	}
	if got := r.percent(); got != 200 {
		t.Fatalf("after a 3 s burst: percent %d, want 200", got)
	}
}

func TestGCPacerForcedGCEndsPacing(t *testing.T) {
	r := newFakeRuntime(t)
	for range 5 {
		r.gc(150, time.Second)
	}
	if got := r.percent(); got != 600 {
		t.Fatalf("5 s into 150 MB/s: percent %d, want 600", got)
	}
	// The compactor's GC (forced), with the burst's allocation since the
	// last: the base again, and pacing starts over.
	r.heap.forced++
	r.gc(150, time.Second)
	if got := r.percent(); got != 200 {
		t.Fatalf("after a forced GC: percent %d, want the base 200", got)
	}
	r.gc(150, time.Second)
	if got := r.percent(); got != 200 {
		t.Fatalf("1 s of load after a forced GC: percent %d, want 200 until it has held 4 s", got)
	}
	// Raised again, then stopped: the base comes back and the re-check is stopped.
	for range 4 {
		r.gc(150, time.Second)
	}
	if got := r.percent(); got != 600 {
		t.Fatalf("load held again: percent %d, want 600", got)
	}
	last := r.timers[len(r.timers)-1]
	r.p.stop()
	if got := r.set[len(r.set)-1]; got != 200 || !last.stopped {
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
