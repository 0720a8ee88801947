package api

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"
)

// QueryLimits bound how many log queries run and wait at once, in all and
// per caller (the shared access policy of the token). A query beyond the
// running limits waits in one FIFO queue; when the queue (or the caller's
// share of it) is full, or the query waited MaxWait, it is refused with
// 429 and Retry-After. Every running query may hold up to the engine's
// result limit and the log store's per-query memory (docs/ARCHITECTURE.md,
// "Query memory budget"), so Running is what bounds the hub's memory
// under queries; the 30 s query timeout bounds how long a slot is held.
type QueryLimits struct {
	Running          int           // default DefaultQueryLimits.Running
	RunningPerCaller int           // default DefaultQueryLimits.RunningPerCaller
	Queued           int           // waiting queries in all; default DefaultQueryLimits.Queued
	QueuedPerCaller  int           // default DefaultQueryLimits.QueuedPerCaller
	MaxWait          time.Duration // default DefaultQueryLimits.MaxWait
}

// DefaultQueryLimits: one query per two cores runs (a query is one SQLite
// statement on one core, often CPU-bound for its whole 30 s; the other
// core keeps devices and the API answered — measured in
// BenchmarkQueryBudget), at least one; one per caller, so on a larger
// machine one key cannot take every slot; and a short queue. Running 0
// here means "by the cores".
var DefaultQueryLimits = QueryLimits{RunningPerCaller: 1, Queued: 16, QueuedPerCaller: 4, MaxWait: 10 * time.Second}

func (l QueryLimits) withDefaults() QueryLimits {
	d := DefaultQueryLimits
	if d.Running <= 0 {
		d.Running = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if l.Running > 0 {
		d.Running = l.Running
	}
	if l.RunningPerCaller > 0 {
		d.RunningPerCaller = l.RunningPerCaller
	}
	if l.Queued > 0 {
		d.Queued = l.Queued
	}
	if l.QueuedPerCaller > 0 {
		d.QueuedPerCaller = l.QueuedPerCaller
	}
	if l.MaxWait > 0 {
		d.MaxWait = l.MaxWait
	}
	return d
}

// errQueryBusy: the query was not admitted; Retry-After says when to try.
var errQueryBusy = errors.New("too many log queries")

// queryGate admits queries under QueryLimits. Waiters are served in
// arrival order, skipping those whose caller is at its running limit (so
// one caller's queue does not block another's).
type queryGate struct {
	lim QueryLimits

	mu      sync.Mutex
	running int
	perRun  map[string]int // running queries per caller
	perWait map[string]int // waiting queries per caller
	waiters []*queryWaiter
}

type queryWaiter struct {
	caller string
	ready  chan struct{} // closed when the waiter was given a slot
}

func newQueryGate(l QueryLimits) *queryGate {
	return &queryGate{lim: l.withDefaults(), perRun: map[string]int{}, perWait: map[string]int{}}
}

// acquire waits for a slot for caller and returns its release, or
// errQueryBusy (queue full, or MaxWait passed), or ctx's error.
func (g *queryGate) acquire(ctx context.Context, caller string) (release func(), err error) {
	g.mu.Lock()
	if g.running < g.lim.Running && g.perRun[caller] < g.lim.RunningPerCaller {
		g.start(caller)
		g.mu.Unlock()
		return g.releaser(caller), nil
	}
	if len(g.waiters) >= g.lim.Queued || g.perWait[caller] >= g.lim.QueuedPerCaller {
		g.mu.Unlock()
		return nil, errQueryBusy
	}
	w := &queryWaiter{caller: caller, ready: make(chan struct{})}
	g.waiters = append(g.waiters, w)
	g.perWait[caller]++
	g.mu.Unlock()

	t := time.NewTimer(g.lim.MaxWait)
	defer t.Stop()
	select {
	case <-w.ready:
		return g.releaser(caller), nil
	case <-t.C:
		err = errQueryBusy
	case <-ctx.Done():
		err = ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-w.ready:
		// Admitted while giving up: pass the slot on.
		g.finish(caller)
	default:
		g.remove(w)
	}
	return nil, err
}

// start counts a running query of caller; g.mu is held.
func (g *queryGate) start(caller string) {
	g.running++
	g.perRun[caller]++
}

func (g *queryGate) releaser(caller string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.finish(caller)
		})
	}
}

// finish ends a running query of caller and admits the waiters that now
// fit; g.mu is held.
func (g *queryGate) finish(caller string) {
	g.running--
	if g.perRun[caller]--; g.perRun[caller] == 0 {
		delete(g.perRun, caller)
	}
	for i := 0; i < len(g.waiters) && g.running < g.lim.Running; {
		w := g.waiters[i]
		if g.perRun[w.caller] >= g.lim.RunningPerCaller {
			i++
			continue
		}
		g.remove(w)
		g.start(w.caller)
		close(w.ready)
	}
}

// remove takes w out of the queue; g.mu is held.
func (g *queryGate) remove(w *queryWaiter) {
	for i, x := range g.waiters {
		if x == w {
			g.waiters = append(g.waiters[:i], g.waiters[i+1:]...)
			break
		}
	}
	if g.perWait[w.caller]--; g.perWait[w.caller] == 0 {
		delete(g.perWait, w.caller)
	}
}

// queryRetryAfter is the Retry-After of a refused query, in seconds: an
// ordinary query takes milliseconds, so a full queue drains in about this
// unless it holds slow ones.
const queryRetryAfter = "5"
