package main

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// The hub's GC pacing under sustained load (issue 21).
//
// At 5,000 connection events/s the hub allocates ~150 MB/s and its live
// heap grows for minutes (JetStream's duplicate window and per-block
// subject state, ~50 → 190 MB over a 30 s run). At a fixed GC percent the
// collector then runs every 1–2 s, and each concurrent mark (tens to
// hundreds of ms on 2 cores, growing with the live heap) takes CPU from a
// machine with ~20 % to spare: the events of that moment queue, and the
// queue drains slowly. What a mark costs depends on the live heap, not on
// how often it runs, so the pacer spaces the marks instead: after each
// GC it sets the GC percent so the next comes no sooner than
// pacedInterval at the allocation rate of the last cycle, never lower
// than the base percent (serveGCPercent) and never with a heap goal past
// the ceiling. While the hub allocates slowly (an idle hub: ~0.2 MB/s)
// the base percent is what applies, so idle memory is as before. Only
// sustained load is paced: the rate must have been high for
// pacedInterval (a connect storm of a few seconds, a registry import,
// the start keep the base), and a GC the application forced — the
// compactor's, which runs once the connects have stopped
// (internal/app/compact.go) — ends it at once, so the memory the
// compactor returns is not taken again at a raised goal. Once the rate
// drops a re-check restores the base (the heap need not wait a GC that a
// quiet hub would not run for hours).
const (
	pacedInterval = 4 * time.Second
	// defaultHeapCeiling bounds a raised heap goal when no memory limit
	// is set: at 5,000 events/s the goal reaches ~700 MB by the end of a
	// 30 s run (live ~170 MB plus 4 s of allocation).
	defaultHeapCeiling = 1 << 30
)

// heapCeiling is the highest heap goal the pacer sets: half of
// GOMEMLIMIT (or debug.SetMemoryLimit) when one is set — the rest is the
// runtime's own, the goroutine stacks and what the GC then does itself
// near the limit — else defaultHeapCeiling.
func heapCeiling() uint64 {
	if limit := debug.SetMemoryLimit(-1); limit > 0 && limit < math.MaxInt64 {
		return min(uint64(limit)/2, defaultHeapCeiling)
	}
	return defaultHeapCeiling
}

// pacedPercent is the GC percent that puts the next GC interval apart at
// rate bytes a second over a live heap of live bytes: at least base, and
// no heap goal past ceiling (unless base alone puts it there).
func pacedPercent(live, rate uint64, base int, interval time.Duration, ceiling uint64) int {
	if live == 0 {
		return base
	}
	goal := float64(live) + float64(rate)*interval.Seconds()
	goal = min(goal, float64(ceiling))
	p := int((goal/float64(live) - 1) * 100)
	return max(p, base)
}

// gcPacer sets the GC percent after every GC (observed through a
// finalizer, so an idle hub is not woken for it) and, while the percent
// is raised, once more pacedInterval×2 later in case no GC comes.
type gcPacer struct {
	base     int
	interval time.Duration
	ceiling  uint64
	set      func(int) int                           // debug.SetGCPercent
	after    func(time.Duration, func()) func() bool // time.AfterFunc's Stop
	read     func() heapReading                      // readHeap
	now      func() time.Time

	mu        sync.Mutex
	percent   int
	lastAlloc uint64
	lastTime  time.Time
	forced    uint64      // GCs the application forced, at the last observation
	busySince time.Time   // since when the rate has been high (zero: it is not)
	recheck   func() bool // stops the pending re-check, if any
	stopped   bool
	gcs       int // GCs observed
}

// startGCPacer paces the GCs from now on; stop ends it and restores base.
func startGCPacer(base int) (stop func()) {
	p := &gcPacer{base: base, interval: pacedInterval, ceiling: heapCeiling(), percent: base,
		set: debug.SetGCPercent, read: readHeap, now: time.Now,
		after: func(d time.Duration, f func()) func() bool {
			return time.AfterFunc(d, f).Stop
		}}
	h := readHeap()
	p.lastAlloc, p.forced = h.allocs, h.forced
	p.lastTime = time.Now()
	p.arm()
	return p.stop
}

// gcSentinel is garbage from the moment it is made: its finalizer runs
// after the next GC, and makes the next one.
type gcSentinel struct{ p *gcPacer }

func (p *gcPacer) arm() {
	runtime.SetFinalizer(&gcSentinel{p: p}, func(s *gcSentinel) {
		if s.p.afterGC() {
			s.p.arm()
		}
	})
}

// afterGC re-paces from the heap the GC left; false once stopped.
func (p *gcPacer) afterGC() bool {
	h := p.read()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	p.gcs++
	p.observe(p.now(), h)
	return true
}

// onRecheck re-paces when no GC came for a while after the percent was
// raised: with little allocated since, the base percent is back.
func (p *gcPacer) onRecheck() {
	h := p.read()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recheck = nil
	if !p.stopped {
		p.observe(p.now(), h)
	}
}

// observe sets the percent for the allocation since the last
// observation. p.mu is held.
func (p *gcPacer) observe(now time.Time, h heapReading) {
	var rate uint64
	if dt := now.Sub(p.lastTime).Seconds(); dt > 0 && h.allocs > p.lastAlloc {
		rate = uint64(float64(h.allocs-p.lastAlloc) / dt)
	}
	since := p.lastTime // the rate is of [since, now]
	forced := h.forced != p.forced
	p.lastAlloc, p.lastTime, p.forced = h.allocs, now, h.forced
	percent := pacedPercent(h.live, rate, p.base, p.interval, p.ceiling)
	switch {
	case forced || percent == p.base:
		p.busySince = time.Time{}
		percent = p.base
	case p.busySince.IsZero():
		p.busySince = since
	}
	if now.Sub(p.busySince) < p.interval {
		percent = p.base // not sustained yet
	}
	if percent != p.percent {
		p.set(percent)
		p.percent = percent
	}
	if p.recheck != nil {
		p.recheck()
		p.recheck = nil
	}
	if percent > p.base {
		p.recheck = p.after(2*p.interval, p.onRecheck)
	}
}

func (p *gcPacer) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.recheck != nil {
		p.recheck()
		p.recheck = nil
	}
	if p.percent != p.base {
		p.set(p.base)
		p.percent = p.base
	}
}

// heapReading is what the pacer reads of the runtime after a GC.
type heapReading struct {
	allocs uint64 // bytes allocated since the process started
	live   uint64 // the heap the last GC marked live
	forced uint64 // GCs the application forced (runtime.GC, debug.FreeOSMemory)
}

func readHeap() heapReading {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}, {Name: "/gc/cycles/forced:gc-cycles"}}
	metrics.Read(s)
	return heapReading{allocs: s[0].Value.Uint64(), live: s[1].Value.Uint64(), forced: s[2].Value.Uint64()}
}
