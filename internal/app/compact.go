package app

import (
	"context"
	"runtime"
	"runtime/debug"
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
const compactPeriod = time.Second

func (a *App) startCompactor() {
	if a.cfg.CompactAfter < 0 {
		return
	}
	burstMin := uint64(a.cfg.CompactAfter)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(compactPeriod)
		defer t.Stop()
		var last, sinceCompact uint64
		started := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			n := a.presence.Connects()
			delta := n - last
			last = n
			sinceCompact += delta
			if !started {
				// Opening the journal and the log store, and reading every
				// device's last state, leaves garbage that a quiet hub
				// would otherwise keep in RSS until its heap doubles.
				started = true
				debug.FreeOSMemory()
				a.log.Debug("memory compacted after startup")
				continue
			}
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
			}
		}
	}()
	a.onStop(func(context.Context) error { cancel(); <-done; return nil })
}

// Compactions is how many post-burst compactions have run.
func (a *App) Compactions() uint64 { return a.compactions.Load() }
