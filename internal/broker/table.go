package broker

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// table is the session table: for each device, its one live session and
// what outlives a connection (subscriptions of a persistent session, the
// cloud-to-device queue). It is sharded by device id; an entry's fields
// are guarded by its shard's lock.
//
// One live session per device holds by construction: claim makes a new
// session the device's live one and hands back the session it replaced,
// which the new one ends (takeover) and waits for before its own connect
// is recorded. Claims of one device therefore form a chain, each link
// connected and recorded after the one before has ended and been recorded.
type table struct {
	seed     maphash.Seed
	stopping atomic.Bool // set by Stop: claim refuses from then on
	shards   [tableShards]tableShard
}

const tableShards = 64

type tableShard struct {
	mu      sync.Mutex
	devices map[string]*entry
}

// entry is one device's state in the table.
type entry struct {
	live *session
	// subs are the subscriptions of the device's session; persistent says
	// they outlive the connection (clean-session 0 / session expiry > 0)
	// until expires.
	subs       subscription
	c2dQoS     byte // the QoS granted to the C2D subscription
	persistent bool
	expires    time.Time
	c2d        c2dQueue
}

func newTable() *table {
	t := &table{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].devices = map[string]*entry{}
	}
	return t
}

func (t *table) shard(id string) *tableShard {
	return &t.shards[maphash.String(t.seed, id)%tableShards]
}

// lock returns the device's entry, created if missing, with its shard
// locked; the caller unlocks the shard.
func (t *table) lock(id string) (*tableShard, *entry) {
	sh := t.shard(id)
	sh.mu.Lock()
	e := sh.devices[id]
	if e == nil {
		e = &entry{}
		sh.devices[id] = e
	}
	return sh, e
}

// claim makes s its device's live session and returns the session it
// replaces (nil if none). ok is false once the hub is stopping.
func (t *table) claim(s *session) (prev *session, ok bool) {
	sh, e := t.lock(s.deviceID())
	defer sh.mu.Unlock()
	if t.stopping.Load() {
		sh.forget(s.deviceID(), e)
		return nil, false
	}
	prev, e.live = e.live, s
	s.replacedLive = prev != nil
	return prev, true
}

// attach applies s's session flags to the entry once s is live and the
// session it replaced has ended: a clean start drops kept subscriptions.
// It reports whether a persistent session was present.
func (t *table) attach(s *session, now time.Time) (present bool) {
	sh, e := t.lock(s.deviceID())
	defer sh.mu.Unlock()
	switch {
	case s.replacedLive:
		// The replaced session was live until s took over: its release
		// left the entry to s, so end what it had here. A persistent
		// session's subscriptions carry over; a clean one's do not.
		if !e.persistent {
			e.subs = 0
		}
	case e.persistent && now.After(e.expires):
		e.subs, e.persistent = 0, false
	}
	present = e.persistent && !s.cleanStart
	if s.cleanStart {
		e.subs = 0
	}
	e.persistent = s.persistent
	e.c2d.unsend()
	return present
}

// release removes s as its device's live session (if it still is) and
// keeps or drops its subscriptions.
func (t *table) release(s *session, now time.Time) {
	sh, e := t.lock(s.deviceID())
	defer sh.mu.Unlock()
	if e.live != s {
		return
	}
	e.live = nil
	if e.persistent {
		e.expires = now.Add(s.b.opts.SessionExpiry)
	} else {
		e.subs = 0
	}
	sh.forget(s.deviceID(), e)
}

// forget drops an entry that holds nothing.
func (sh *tableShard) forget(id string, e *entry) {
	if e.live == nil && !e.persistent && e.c2d.empty() {
		delete(sh.devices, id)
	}
}

// live returns the device's live session, or nil.
func (t *table) live(id string) *session {
	sh := t.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.devices[id]; e != nil {
		return e.live
	}
	return nil
}

// all returns every live session.
func (t *table) all() []*session {
	var out []*session
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, e := range sh.devices {
			if e.live != nil {
				out = append(out, e.live)
			}
		}
		sh.mu.Unlock()
	}
	return out
}

// subscribe adds and removes subscriptions of the live session s (with
// the QoS granted to a C2D one) and returns them all.
func (t *table) subscribe(s *session, add, remove subscription, c2dQoS byte) subscription {
	sh, e := t.lock(s.deviceID())
	defer sh.mu.Unlock()
	if e.live == s && add&subC2D != 0 {
		e.c2dQoS = c2dQoS
	}
	if e.live == s {
		e.subs = (e.subs | add) &^ remove
	}
	return e.subs
}

// sweep drops what has expired: C2D messages past their time to live and
// persistent sessions of devices that stayed away past the session expiry;
// entries left with nothing go.
func (t *table) sweep(now time.Time) {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for id, e := range sh.devices {
			e.c2d.dropExpired(now)
			if e.live == nil && e.persistent && now.After(e.expires) {
				e.subs, e.persistent = 0, false
			}
			sh.forget(id, e)
		}
		sh.mu.Unlock()
	}
}

// drop forgets a deleted device's queue and kept session; a live session
// of it is being ended and leaves the table when it has.
func (t *table) drop(id string) {
	sh, e := t.lock(id)
	defer sh.mu.Unlock()
	e.c2d = c2dQueue{}
	if e.live == nil {
		e.subs, e.persistent = 0, false
	}
	sh.forget(id, e)
}

// restore gives the device back to prev when s gave up waiting for it to
// end (if s is still the live one).
func (t *table) restore(s, prev *session) {
	sh, e := t.lock(s.deviceID())
	defer sh.mu.Unlock()
	if e.live == s {
		e.live = prev
	}
}

// subscribed returns the subscriptions of s, or none if s is not its
// device's live session.
func (t *table) subscribed(s *session) subscription {
	sh := t.shard(s.deviceID())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.devices[s.deviceID()]; e != nil && e.live == s {
		return e.subs
	}
	return 0
}
