package app

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Memory compaction after startup and after connect bursts.
//
// A reconnect storm leaves each connection's goroutines with the stacks
// that TLS and authentication grew, and the heap at its peak: Go shrinks a
// stack only during a GC, by half per cycle, and returns freed pages to
// the OS slowly. An idle fleet then holds tens of KiB more per device than
// it needs. After a burst of at least burstMin connects followed by a
// quiet second, the hub runs two GCs (each shrinks by half the stacks
// that can be shrunk) and returns free memory to the OS. It costs two
// collections per storm, never anything per connect. One more runs a second after the
// hub started. Config.CompactAfter sets the burst size (default 1000;
// negative turns compaction off).
//
// The burst's compaction comes one quiet second after the last connect,
// while the event pipeline (journal, log writer, insight feed, delivery)
// is still working off what the connects journalled; the garbage of that
// work would then stay in RSS until the heap reaches its next goal (3 ×
// the live heap at serve's GC percent). So after a burst the hub compacts
// once more when it has settled: when it has allocated less than
// settleRate a second for settleFor (an idle hub allocates ~0.1–0.2 MB/s,
// measured: bench/README.md), or at most settleMax after the burst.
const (
	compactPeriod = time.Second // checked just after every whole second
	settleRate    = 1 << 20
	settleFor     = 3 * time.Second
	settleMax     = 5 * time.Minute
)

func (a *App) startCompactor() {
	if a.cfg.CompactAfter < 0 {
		return
	}
	burstMin := uint64(a.cfg.CompactAfter)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Each check comes just after a whole second, with the metrics
		// sampler's: an idle hub wakes once for both (a ticker of its own
		// was one more wake-up a second).
		t := time.NewTimer(untilNextSecond(time.Now()))
		defer t.Stop()
		var last, sinceCompact uint64
		started := false
		allocs := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
		var lastAlloc uint64
		var settle settler
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			t.Reset(untilNextSecond(time.Now()))
			n := a.presence.Connects()
			delta := n - last
			last = n
			sinceCompact += delta
			metrics.Read(allocs)
			alloc := allocs[0].Value.Uint64()
			rate := alloc - lastAlloc // bytes in the last period
			lastAlloc = alloc
			if !started {
				// Opening the journal and the log store, and reading every
				// device's last state, leaves garbage that a quiet hub
				// would otherwise keep in RSS until its heap doubles.
				started = true
				debug.FreeOSMemory()
				a.log.Debug("memory compacted after startup")
				continue
			}
			now := time.Now()
			if delta == 0 && sinceCompact >= burstMin {
				start := time.Now()
				// Two collections: each halves the stacks a storm grew (the
				// sessions' readers start at the runtime's average stack
				// size, which the handshakes inflate), then free pages go
				// back to the OS.
				runtime.GC()
				debug.FreeOSMemory() // a GC, then return free pages
				a.log.Debug("memory compacted after a connect burst", "connects", sinceCompact, "took", time.Since(start))
				sinceCompact = 0
				a.compactions.Add(1)
				settle.burst(now)
				continue
			}
			if after, ok := settle.observe(now, delta, rate); ok {
				start := time.Now()
				debug.FreeOSMemory()
				a.log.Debug("memory compacted after the hub settled", "after", after, "took", time.Since(start))
				a.settles.Add(1)
			}
		}
	}()
	a.onStop(func(context.Context) error { cancel(); <-done; return nil })
}

// untilNextSecond is how long from now until just after the next whole
// second (1 ms after, as the metrics sampler: see metrics.Collector.run).
func untilNextSecond(now time.Time) time.Duration {
	return now.Truncate(time.Second).Add(time.Second + time.Millisecond).Sub(now)
}

// settler decides when a hub has settled after a burst (see above).
type settler struct {
	settling   bool      // a burst was compacted; waiting to settle
	burstAt    time.Time // when
	quietSince time.Time // allocating below settleRate since (zero: not)
}

func (s *settler) burst(now time.Time) {
	*s = settler{settling: true, burstAt: now}
}

// observe takes one compactPeriod's connects and bytes allocated; it
// reports when to compact (once per burst) and how long after the burst.
func (s *settler) observe(now time.Time, connects, allocated uint64) (time.Duration, bool) {
	if !s.settling {
		return 0, false
	}
	if connects > 0 || allocated >= settleRate*uint64(compactPeriod/time.Second) {
		s.quietSince = time.Time{}
	} else if s.quietSince.IsZero() {
		s.quietSince = now
	}
	after := now.Sub(s.burstAt)
	if (!s.quietSince.IsZero() && now.Sub(s.quietSince) >= settleFor) || after >= settleMax {
		s.settling = false
		return after, true
	}
	return 0, false
}

// Compactions is how many post-burst compactions have run.
func (a *App) Compactions() uint64 { return a.compactions.Load() }

// SettleCompactions is how many compactions have run once the hub
// settled after a burst.
func (a *App) SettleCompactions() uint64 { return a.settles.Load() }
