package presence

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Sink receives events in order per device. It must return quickly.
type Sink func(ConnectionEvent)

// Session is one established MQTT session of a device, as the broker saw
// its CONNECT.
type Session struct {
	ID               string
	DeviceID         string
	ModuleID         string
	Protocol         string
	ProtocolVersion  byte
	MaskedIP         string
	SDKVersion       string
	AuthType         string
	TokenExpiry      time.Time
	ConnectedAt      time.Time
	CleanSession     bool
	KeepAliveSeconds uint16
	// Epoch, when set, replaces the tracker's epoch in the sequence
	// numbers of this session's events: a cluster gives every claim of a
	// device a larger one (internal/cluster), so a device's numbers keep
	// increasing as it moves between nodes.
	Epoch uint64 `json:",omitempty"`
	// Recorded, when set, rides on the connected event to the sink, which
	// calls it once the event is durable (nil) or cannot be (error).
	Recorded func(error) `json:"-"`
	// Ended, when set, rides on the disconnected event the same way; it is
	// called with nil at once when Disconnect records nothing.
	Ended func(error) `json:"-"`
}

type device struct {
	counter      uint64
	current      *Session
	stateUpdated time.Time
	lastActivity atomic.Int64 // unix nanoseconds
	lastEnd      sessionEnd   // how the previous session ended
}

// sessionEnd is what renewal detection needs of the last disconnect.
type sessionEnd struct {
	reason      Reason
	at          time.Time
	tokenExpiry time.Time
	sequence    string
}

const shardCount = 64

type shard struct {
	mu      sync.Mutex
	devices map[string]*device
}

// Tracker holds the live session of every device.
type Tracker struct {
	hub       string
	epoch     uint64
	node      uint32
	sink      Sink
	now       func() time.Time
	grace     time.Duration
	seed      maphash.Seed
	shards    [shardCount]shard
	connected atomic.Int64
	connects  atomic.Uint64
}

// Options configure a Tracker.
type Options struct {
	Hub string
	// Epoch makes sequence numbers larger than any of an earlier run.
	Epoch uint64
	Node  uint32
	Sink  Sink
	Now   func() time.Time
	// RenewalGrace is how soon after a client DISCONNECT or token expiry a
	// reconnect with a later-expiring token counts as a token renewal
	// (default 2 minutes; the SDKs reconnect within milliseconds).
	RenewalGrace time.Duration
}

// DefaultRenewalGrace is Options.RenewalGrace's default.
const DefaultRenewalGrace = 2 * time.Minute

// NewTracker returns an empty tracker.
func NewTracker(o Options) *Tracker {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RenewalGrace == 0 {
		o.RenewalGrace = DefaultRenewalGrace
	}
	t := &Tracker{hub: o.Hub, epoch: o.Epoch, node: o.Node, sink: o.Sink, now: o.Now, grace: o.RenewalGrace, seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].devices = map[string]*device{}
	}
	return t
}

func (t *Tracker) shard(id string) *shard {
	return &t.shards[maphash.String(t.seed, id)%shardCount]
}

// get returns the device record, creating it; the shard lock must be held.
func (sh *shard) get(id string) *device {
	d := sh.devices[id]
	if d == nil {
		d = &device{}
		sh.devices[id] = d
	}
	return d
}

func (t *Tracker) event(d *device, kind Kind, s *Session, now time.Time) ConnectionEvent {
	d.counter++
	epoch := t.epoch
	if s.Epoch != 0 {
		epoch = s.Epoch
	}
	seq := FormatSequence(epoch, t.node, d.counter)
	return ConnectionEvent{
		ID: s.DeviceID + "/" + seq, Kind: kind, Time: now.UTC(), Hub: t.hub,
		DeviceID: s.DeviceID, ModuleID: s.ModuleID, Sequence: seq,
		Protocol: s.Protocol, ProtocolVersion: s.ProtocolVersion, MaskedIP: s.MaskedIP,
		SDKVersion: s.SDKVersion, AuthType: s.AuthType, SessionID: s.ID,
		TokenExpiry: s.TokenExpiry.UTC(), CleanSession: s.CleanSession, KeepAliveSeconds: s.KeepAliveSeconds,
	}
}

func (t *Tracker) ended(d *device, s *Session, reason Reason, result Result, detail string, now time.Time) ConnectionEvent {
	ev := t.event(d, Disconnected, s, now)
	ev.Reason, ev.Result, ev.Detail = reason, result, detail
	ev.ConnectedAt = s.ConnectedAt.UTC()
	ev.DurationMs = now.Sub(s.ConnectedAt).Milliseconds()
	last := s.ConnectedAt
	if n := d.lastActivity.Load(); n != 0 && n > last.UnixNano() {
		last = time.Unix(0, n)
	}
	ev.IdleMs = max(now.Sub(last).Milliseconds(), 0)
	return ev
}

// Connect makes s the device's current session. A still-current older
// session is ended first as a takeover (400027).
func (t *Tracker) Connect(s *Session) {
	now := t.now()
	if s.ConnectedAt.IsZero() {
		s.ConnectedAt = now
	}
	sh := t.shard(s.DeviceID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	d := sh.get(s.DeviceID)
	if old := d.current; old != nil {
		t.sink(t.ended(d, old, ReasonTakeover, ResultTakeover, "a new connection with the same device id replaced this one", now))
		t.connected.Add(-1)
	}
	d.current = s
	d.stateUpdated = now
	d.lastActivity.Store(now.UnixNano())
	t.connected.Add(1)
	t.connects.Add(1)
	ev := t.event(d, Connected, s, now)
	if e := d.lastEnd; (e.reason == ReasonClient || e.reason == ReasonTokenExpired) &&
		now.Sub(e.at) <= t.grace && s.TokenExpiry.After(e.tokenExpiry) {
		ev.TokenRenewal, ev.RenewalOf = true, e.sequence
	}
	d.lastEnd = sessionEnd{}
	ev.Recorded = s.Recorded
	t.sink(ev)
}

// Disconnect ends s if it is still the device's current session and
// reports whether it was (a session already superseded by a takeover, or
// never connected, emits nothing).
func (t *Tracker) Disconnect(s *Session, reason Reason, result Result, detail string) bool {
	now := t.now()
	sh := t.shard(s.DeviceID)
	sh.mu.Lock()
	d := sh.devices[s.DeviceID]
	if d == nil || d.current != s {
		sh.mu.Unlock()
		if s.Ended != nil {
			s.Ended(nil)
		}
		return false
	}
	defer sh.mu.Unlock()
	d.current = nil
	d.stateUpdated = now
	t.connected.Add(-1)
	ev := t.ended(d, s, reason, result, detail, now)
	d.lastEnd = sessionEnd{reason: reason, at: now, tokenExpiry: s.TokenExpiry, sequence: ev.Sequence}
	ev.Recorded = s.Ended
	t.sink(ev)
	return true
}

// Refuse records a refused connection attempt. ev needs Reason, Result,
// Detail and what is known of the device; ID, Kind, Time and Hub are set
// here.
func (t *Tracker) Refuse(ev ConnectionEvent) {
	ev.Kind = Refused
	ev.Time = t.now().UTC()
	ev.Hub = t.hub
	ev.ID = newID()
	t.sink(ev)
}

// Touch records device activity (telemetry, pings are not counted).
func (t *Tracker) Touch(deviceID string) {
	sh := t.shard(deviceID)
	sh.mu.Lock()
	d := sh.devices[deviceID]
	sh.mu.Unlock()
	if d != nil {
		d.lastActivity.Store(t.now().UnixNano())
	}
}

// State reports the device's live connection state for the registry view.
func (t *Tracker) State(deviceID string) (connected bool, updated, lastActivity time.Time) {
	sh := t.shard(deviceID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	d := sh.devices[deviceID]
	if d == nil {
		return false, time.Time{}, time.Time{}
	}
	if n := d.lastActivity.Load(); n != 0 {
		lastActivity = time.Unix(0, n).UTC()
	}
	return d.current != nil, d.stateUpdated.UTC(), lastActivity
}

// Current returns the device's current session, or nil.
func (t *Tracker) Current(deviceID string) *Session {
	sh := t.shard(deviceID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if d := sh.devices[deviceID]; d != nil {
		return d.current
	}
	return nil
}

// Connects is the number of sessions established since start.
func (t *Tracker) Connects() uint64 { return t.connects.Load() }

// Connected is the number of devices with a live session.
func (t *Tracker) Connected() int { return int(t.connected.Load()) }

// Orphaned records the end of a session that the previous run of the hub
// left open (it stopped without recording the disconnect: a crash or a
// kill). last is that session's connected event from the journal. Call it
// at start, before devices connect, so the disconnect is sequenced before
// anything new.
func (t *Tracker) Orphaned(last ConnectionEvent) {
	now := t.now()
	s := &Session{
		ID: last.SessionID, DeviceID: last.DeviceID, ModuleID: last.ModuleID,
		Protocol: last.Protocol, ProtocolVersion: last.ProtocolVersion, MaskedIP: last.MaskedIP,
		SDKVersion: last.SDKVersion, AuthType: last.AuthType, TokenExpiry: last.TokenExpiry,
		ConnectedAt: last.Time, CleanSession: last.CleanSession, KeepAliveSeconds: last.KeepAliveSeconds,
	}
	sh := t.shard(s.DeviceID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	d := sh.get(s.DeviceID)
	if d.current != nil {
		return // already connected in this run: nothing was left open
	}
	ev := t.ended(d, s, ReasonHubRestart, ResultServerError,
		"the hub stopped without closing this session (crash or kill); recorded when it started again", now)
	d.lastEnd = sessionEnd{reason: ReasonHubRestart, at: now, tokenExpiry: s.TokenExpiry, sequence: ev.Sequence}
	t.sink(ev)
}

// Forget drops s, if it is still the device's current session, without
// recording its end: another cluster node records it (it took the
// session over while this node was cut off), or this node does later,
// as an adoption, once it knows no other node did (Adopted records
// nothing for a device with another session current here).
func (t *Tracker) Forget(s *Session) {
	sh := t.shard(s.DeviceID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	d := sh.devices[s.DeviceID]
	if d == nil || d.current != s {
		return
	}
	d.current = nil
	d.stateUpdated = t.now()
	t.connected.Add(-1)
}

// Adopted records the end of a session this tracker never held: one that
// another cluster node (or this node's previous run) left open when it
// died, taken over by this node to close it. s carries what its connect
// recorded, its Epoch and, when set, Ended. A device live here in
// another session is left alone (nothing was open elsewhere; Ended is
// called with nil). A current session with s's ID is s itself, ended by
// this node's fence before its broker end ran Forget: its end is
// recorded here, and that Forget finds it no longer current.
func (t *Tracker) Adopted(s *Session, reason Reason, result Result, detail string) {
	now := t.now()
	sh := t.shard(s.DeviceID)
	sh.mu.Lock()
	d := sh.get(s.DeviceID)
	if d.current != nil && d.current.ID != s.ID {
		sh.mu.Unlock()
		if s.Ended != nil {
			s.Ended(nil)
		}
		return
	}
	defer sh.mu.Unlock()
	if d.current != nil {
		d.current = nil
		d.stateUpdated = now
		t.connected.Add(-1)
	}
	ev := t.ended(d, s, reason, result, detail, now)
	d.lastEnd = sessionEnd{reason: reason, at: now, tokenExpiry: s.TokenExpiry, sequence: ev.Sequence}
	ev.Recorded = s.Ended
	t.sink(ev)
}
