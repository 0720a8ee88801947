package broker

import (
	"sync"
	"time"
)

// deviceLocks serialises CONNECT handling per client id: mochi's session
// inheritance is a get-then-add on its client map with no lock per id, so
// racing CONNECTs can leave an orphan live session (deps.md §1.4).
type deviceLocks struct {
	mu    sync.Mutex
	locks map[string]*deviceLock
}

type deviceLock struct {
	ch   chan struct{} // capacity 1: holding = a value in the channel
	refs int
}

func newDeviceLocks() *deviceLocks { return &deviceLocks{locks: map[string]*deviceLock{}} }

// acquire waits up to timeout for id's lock. The returned release is safe
// to call more than once and from any goroutine; a safety timer calls it
// after hold, because a failed CONNACK write leaves no later hook to do it.
func (d *deviceLocks) acquire(id string, timeout, hold time.Duration) (release func(), ok bool) {
	d.mu.Lock()
	l := d.locks[id]
	if l == nil {
		l = &deviceLock{ch: make(chan struct{}, 1)}
		d.locks[id] = l
	}
	l.refs++
	d.mu.Unlock()

	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l.ch <- struct{}{}:
	case <-t.C:
		d.unref(id, l)
		return nil, false
	}
	var once sync.Once
	var safety *time.Timer
	release = func() {
		once.Do(func() {
			safety.Stop()
			<-l.ch
			d.unref(id, l)
		})
	}
	safety = time.AfterFunc(hold, release)
	return release, true
}

func (d *deviceLocks) unref(id string, l *deviceLock) {
	d.mu.Lock()
	l.refs--
	if l.refs == 0 {
		delete(d.locks, id)
	}
	d.mu.Unlock()
}
