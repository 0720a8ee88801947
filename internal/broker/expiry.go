package broker

import (
	"container/heap"
	"sync"
	"time"
)

// expiries ends sessions when their SAS tokens expire (IoT Hub cannot
// re-authenticate an MQTT connection, so it closes it). One timer serves
// the whole broker: the sessions wait in a heap ordered by token expiry,
// and the timer is set for the earliest. A timer per session cost each
// idle connection ~180 bytes of heap (timer and closure); a heap slot is
// a pointer.
type expiries struct {
	b     *Broker
	mu    sync.Mutex
	q     expiryQueue
	timer *time.Timer
	next  time.Time // the expiry the timer is set for (zero: none)
}

// add makes s end when its token expires.
func (e *expiries) add(s *session) {
	e.mu.Lock()
	heap.Push(&e.q, s)
	e.arm()
	e.mu.Unlock()
}

// remove forgets s (its session ended); nothing if it was not waiting.
func (e *expiries) remove(s *session) {
	e.mu.Lock()
	if s.expiryAt > 0 {
		heap.Remove(&e.q, int(s.expiryAt-1))
		e.arm()
	}
	e.mu.Unlock()
}

// arm sets the timer for the earliest expiry; e.mu is held.
func (e *expiries) arm() {
	if len(e.q) == 0 {
		if e.timer != nil {
			e.timer.Stop()
		}
		e.next = time.Time{}
		return
	}
	at := e.q[0].id.tokenExpiry
	if at.Equal(e.next) {
		return
	}
	e.next = at
	d := max(at.Sub(e.b.opts.Now()), 0)
	if e.timer == nil {
		e.timer = time.AfterFunc(d, e.fire)
	} else {
		e.timer.Reset(d)
	}
}

// fire asks every session whose token has expired to end.
func (e *expiries) fire() {
	now := e.b.opts.Now()
	var due []*session
	e.mu.Lock()
	for len(e.q) > 0 && !e.q[0].id.tokenExpiry.After(now) {
		due = append(due, heap.Pop(&e.q).(*session))
	}
	e.next = time.Time{} // this firing used the timer up
	e.arm()
	e.mu.Unlock()
	for _, s := range due {
		s.requestEnd(causeTokenExpired(s.id.tokenExpiry))
	}
}

// expiryQueue is a heap of sessions by token expiry; each session knows
// its place (expiryAt, 1-based; 0: not queued).
type expiryQueue []*session

func (q expiryQueue) Len() int { return len(q) }
func (q expiryQueue) Less(i, j int) bool {
	return q[i].id.tokenExpiry.Before(q[j].id.tokenExpiry)
}
func (q expiryQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].expiryAt, q[j].expiryAt = int32(i+1), int32(j+1)
}
func (q *expiryQueue) Push(x any) {
	s := x.(*session)
	s.expiryAt = int32(len(*q) + 1)
	*q = append(*q, s)
}
func (q *expiryQueue) Pop() any {
	old := *q
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	s.expiryAt = 0
	return s
}
