package broker

import (
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// burstRelease gives the heap a connect burst freed back to the OS once the
// hub has been calm for a while. Each connect leaves ~25 KB of garbage
// (authentication, TLS, journal, events) among its session's long-lived
// objects; once collected, the free pages stay mapped (the runtime keeps
// up to its heap goal), so an idle hub that took 10,000 connects in a
// burst keeps a few KiB per connection of memory nothing uses. One forced
// collection that returns it costs a few tens of milliseconds of CPU,
// after the burst, and only after one: the timer runs only while connects
// come, so an idle hub is not woken for it.
type burstRelease struct {
	mu       sync.Mutex
	connects int64 // since the last release
	seen     int64 // connects when the timer last looked
	timer    *time.Timer
	release  func() // debug.FreeOSMemory; tests count calls instead
	stopped  atomic.Bool
	// connecting counts connections in their connect phase (serve): a
	// burst whose connects wait for a slow journal is not calm although
	// none completes.
	connecting atomic.Int32
}

// burstMin connects since the last release make a burst; burstCalm is how
// long without a connect makes calm. Variables for tests.
var (
	burstMin  int64 = 1000
	burstCalm       = 3 * time.Second
)

// connected counts an established session.
func (r *burstRelease) connected() {
	r.mu.Lock()
	r.connects++
	if r.timer == nil && !r.stopped.Load() {
		r.seen = r.connects
		r.timer = time.AfterFunc(burstCalm, r.check)
	}
	r.mu.Unlock()
}

// check runs burstCalm after the first connect since the timer last
// stopped, and every burstCalm while connects keep coming or are under
// way. A collection in the middle of a burst would stall its connects.
func (r *burstRelease) check() {
	r.mu.Lock()
	if (r.connects != r.seen || r.connecting.Load() > 0) && !r.stopped.Load() {
		r.seen = r.connects
		r.timer.Reset(burstCalm)
		r.mu.Unlock()
		return
	}
	r.timer = nil
	burst := r.connects >= burstMin
	if burst {
		r.connects = 0
	}
	r.mu.Unlock()
	if burst && !r.stopped.Load() {
		if r.release != nil {
			r.release()
		} else {
			debug.FreeOSMemory()
		}
	}
}

// stop ends the timer (Stop).
func (r *burstRelease) stop() {
	r.stopped.Store(true)
	r.mu.Lock()
	if r.timer != nil {
		r.timer.Stop()
	}
	r.mu.Unlock()
}
