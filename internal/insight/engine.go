package insight

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
)

// Options configure NewEngine. Zero fields take the defaults.
type Options struct {
	// Hub is the hub's host name (records' Hub).
	Hub string
	// FlapThreshold is the flap score (reconnects in the last hour) at or
	// above which a device counts as flapping; default 6.
	FlapThreshold int
	// ShortToken is the token lifetime under which tokens count as
	// short-lived; default 3 minutes.
	ShortToken time.Duration
	// Incidents tune mass-disconnect detection.
	Incidents IncidentOptions
	// Emit receives the records the engine derives (incidents opened and
	// resolved, devices starting and stopping to flap), in order. It is
	// called with the engine's lock held and must not call the engine.
	Emit   func(Record)
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultFlapThreshold = 6
	DefaultShortToken    = 3 * time.Minute
	// sweepEvery is how often (engine time) flap scores that only time
	// lowers and incident timers are looked at.
	sweepEvery = 5 * time.Second
)

// Engine holds every device's history and the fleet's state, applied one
// journal record at a time. It is safe for concurrent use: one lock, held
// for the few microseconds an event takes and for a diagnosis.
type Engine struct {
	o Options

	mu      sync.Mutex
	devices map[string]*device
	strs    strtab
	now     int64 // engine time: the newest event's or tick's, unix ms
	connSeq uint64
	regSeq  uint64
	// active holds the devices with a reconnect in the last hour (the
	// flap sweep walks only these).
	active     map[string]struct{}
	nFlapping  int
	nConnected int
	lastSweep  int64
	det        detector
	applied    uint64
	// changes counts what changed the state beyond the clock (Changes).
	changes uint64
}

// NewEngine returns an empty engine.
func NewEngine(o Options) *Engine {
	if o.FlapThreshold <= 0 {
		o.FlapThreshold = DefaultFlapThreshold
	}
	if o.ShortToken <= 0 {
		o.ShortToken = DefaultShortToken
	}
	o.Incidents.defaults()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Emit == nil {
		o.Emit = func(Record) {}
	}
	e := &Engine{o: o, devices: map[string]*device{}, active: map[string]struct{}{}}
	e.strs.rebuild()
	e.det.init()
	return e
}

// ErrUnknownDevice: the engine has no history of the device.
var ErrUnknownDevice = errors.New("insight: no history of this device")

func (e *Engine) device(id string) *device {
	d := e.devices[id]
	if d == nil {
		d = &device{ID: clone(id)}
		e.devices[d.ID] = d
	}
	return d
}

// advance moves engine time forward (never back) and runs the sweeps that
// time drives.
func (e *Engine) advance(at int64) {
	if at <= e.now {
		return
	}
	e.now = at
	e.det.advance(e, at)
	if at-e.lastSweep >= int64(sweepEvery/time.Millisecond) {
		e.lastSweep = at
		e.sweepFlaps(at)
		e.det.sweep(e, at)
	}
}

// Tick moves engine time to now if it is ahead: incident and flap timers
// run on engine time, which events advance; the feed ticks with the wall
// clock once it has caught up with the journal.
func (e *Engine) Tick(now time.Time) {
	e.mu.Lock()
	if e.waiting() {
		e.changes++ // timers may run
	}
	e.advance(now.UnixMilli())
	e.mu.Unlock()
}

// Changes counts the changes to the engine's state that the clock alone
// would not make again: events, registry changes, and ticks while the
// engine was Waiting. A state saved when Changes was n, loaded and
// ticked to the same time, answers as the engine that kept running while
// Changes stays n (its ticks changed engine time only, which the next
// tick or event sets anyway), so the feed saves only when it moved.
func (e *Engine) Changes() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changes
}

// Waiting reports whether the clock alone can change what the engine
// reports or emits: an open incident (it closes; its devices' recovery
// ends), drops in the incident window (they age out while the baseline
// falls), a flapping device (its score falls). Otherwise a tick changes
// nothing that the next event's own advance does not do the same (the
// baseline's decay over a gap is one step).
func (e *Engine) Waiting() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.waiting()
}

func (e *Engine) waiting() bool {
	return e.det.open != nil || len(e.det.drops) > 0 || e.nFlapping > 0
}

// Now is the engine's time.
func (e *Engine) Now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return time.UnixMilli(e.now).UTC()
}

// Positions are the journal positions applied: TETHER_CONN and
// TETHER_REGISTRY stream sequences.
func (e *Engine) Positions() (conn, reg uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.connSeq, e.regSeq
}

// Applied counts the connection events applied since the engine was made.
func (e *Engine) Applied() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.applied
}

// Apply adds one connection event, stored at TETHER_CONN sequence seq (0:
// unknown; an event at or before the applied position is ignored, so a
// replay from an older position is harmless).
func (e *Engine) Apply(ev *presence.ConnectionEvent, seq uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if seq != 0 {
		if seq <= e.connSeq {
			return
		}
		e.connSeq = seq
	}
	e.applied++
	e.changes++
	if ev.DeviceID == "" {
		return // a refusal before the CONNECT named a device
	}
	at := ev.Time.UnixMilli()
	e.advance(at)
	d := e.device(ev.DeviceID)
	r := rec{
		At: at, Src: e.strs.intern(ev.MaskedIP), SDK: e.strs.intern(ev.SDKVersion),
		Result: resultCode(ev.Result.Type), KA: ev.KeepAliveSeconds, Reason: reasonIndex(ev.Reason),
		Session: decodeSession(ev.SessionID),
	}
	if !ev.TokenExpiry.IsZero() {
		r.Life, r.Flags = lifeSeconds(ev.TokenExpiry, ev.Time), r.Flags|flagLife
	} else if exp, ok := expiryFromDetail(ev.Detail); ok {
		r.Life, r.Flags = lifeSeconds(exp, ev.Time), r.Flags|flagLife
	}
	probe := isProbe(ev.SDKVersion)
	if probe {
		r.Flags |= flagProbe
	}
	switch ev.Kind {
	case presence.Connected:
		e.connected(d, &r, ev, probe)
	case presence.Disconnected:
		r.Op = opDisconnect
		e.disconnected(d, &r, ev, probe)
	case presence.Refused:
		r.Op = opRefused
		r.Class = refusalClass(ev.Reason, ev.AuthFailure, ev.Result)
		if probe {
			d.Probe = probeState{At: at, Src: r.Src, Why: r.Class}
			r.Class = ClassProbe
		} else {
			d.seenSrc(r.Src, at, false, true, false)
			d.seenSDK(r.SDK, at)
		}
		d.push(r)
	}
}

func (e *Engine) connected(d *device, r *rec, ev *presence.ConnectionEvent, probe bool) {
	end := d.Live.End
	switch {
	case probe:
		r.Class = ClassProbe
		d.Probe = probeState{At: r.At, Src: r.Src, OK: true}
		// The probe replaced the device's own session: that takeover was
		// the probe's doing, not a second device's.
		if i := d.last(); i >= 0 && d.Ring[i].Class == ClassTakeover && r.At-d.Ring[i].At <= 2000 {
			d.Ring[i].Flags |= flagProbe
			d.reclass(i, ClassProbe)
			d.Live.End.Class = ClassProbe
		}
	case !d.hasConnected():
		r.Class = ClassReturn
		r.Flags |= flagFirst
	case end.Class == ClassHub || end.Class == ClassProbe || end.Class == ClassAdmin:
		r.Class = ClassReturn
	case ev.TokenRenewal && end.Class == ClassTokenExpiry:
		r.Class = ClassRenewalExpiry
		r.Flags |= flagRenewMark
	case ev.TokenRenewal:
		r.Flags |= flagRenewMark
		r.Class = ClassRenewal
		if end.Flags&flagLife != 0 {
			// A renewal comes late in the token's life; a reconnect with a
			// fresh token long before is an app restarting, not an SDK
			// renewing.
			lifetime := int64(end.Dur) + int64(end.Life)*1000
			if lifetime > 0 && int64(end.Dur)*2 < lifetime {
				r.Class = ClassConnect
			}
		}
	default:
		r.Class = ClassConnect
	}
	if !probe {
		if !d.Live.Connected {
			e.nConnected++
		}
		d.Live = liveState{Connected: true, Since: r.At, Src: r.Src, SDK: r.SDK, KA: r.KA, End: end}
		d.seenSrc(r.Src, r.At, true, false, false)
		d.seenSDK(r.SDK, r.At)
	}
	d.push(*r)
	if r.Class == ClassConnect {
		e.reconnected(d, r.At)
	}
	e.det.connected(e, d, r)
}

func (e *Engine) disconnected(d *device, r *rec, ev *presence.ConnectionEvent, probe bool) {
	r.Dur = saturate32(ev.DurationMs)
	r.Idle = saturate32(ev.IdleMs)
	r.Class = disconnectClass(ev.Reason, ev.Result)
	if probe {
		r.Class = ClassProbe
		d.push(*r)
		return
	}
	if d.Live.Connected {
		e.nConnected--
	}
	d.Live.Connected = false
	d.Live.End = endState{At: r.At, Class: r.Class, Dur: r.Dur, Life: r.Life, Flags: r.Flags & flagLife}
	drop := r.Class == ClassNetwork || r.Class == ClassKeepAlive
	d.seenSrc(r.Src, r.At, false, false, drop)
	d.push(*r)
	e.det.disconnected(e, d, r, ev)
}

// reconnected counts a reconnect in the device's flap score.
func (e *Engine) reconnected(d *device, at int64) {
	d.Flap.add(at)
	e.active[d.ID] = struct{}{}
	if sc, _, _ := d.Flap.score(e.now); !d.FlapOn && sc >= e.o.FlapThreshold {
		d.FlapOn = true
		e.nFlapping++
		e.emitFlap(d, true)
	}
}

// sweepFlaps ends the flapping of devices whose score time has lowered,
// and forgets devices without a reconnect in the last hour.
func (e *Engine) sweepFlaps(now int64) {
	for id := range e.active {
		d := e.devices[id]
		if d == nil {
			delete(e.active, id)
			continue
		}
		sc, _, _ := d.Flap.score(now)
		if d.FlapOn && sc < e.o.FlapThreshold {
			d.FlapOn = false
			e.nFlapping--
			e.emitFlap(d, false)
		}
		if sc == 0 {
			delete(e.active, id)
		}
	}
}

func (e *Engine) emitFlap(d *device, on bool) {
	fs := e.flapScore(d, e.now)
	state := "stable"
	if on {
		state = "flapping"
	}
	t := time.UnixMilli(e.now).UTC()
	e.o.Emit(Record{
		ID: "flap:" + d.ID + ":" + state + ":" + t.Format("20060102T150405.000Z"), Kind: KindDeviceFlapping,
		Time: t, Hub: e.o.Hub, Source: e.connSeq,
		Flap: &FlapChange{
			DeviceID: d.ID, Flapping: on, Score: fs.Score, Trend: fs.Trend,
			RecentPerHour: fs.RecentPerHour, BeforePerHour: fs.BeforePerHour, Threshold: e.o.FlapThreshold,
		},
	})
}

// ApplyChange adds one registry change, stored at TETHER_REGISTRY
// sequence seq (as Apply).
func (e *Engine) ApplyChange(c *registry.Change, seq uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if seq != 0 {
		if seq <= e.regSeq {
			return
		}
		e.regSeq = seq
	}
	e.changes++
	if c.DeviceID == "" {
		return
	}
	d := e.device(c.DeviceID)
	at := c.Time.UnixMilli()
	g := &d.Reg
	g.Caller = c.Caller
	var fp [2]string
	if c.Keys != nil {
		fp = [2]string{c.Keys.Primary, c.Keys.Secondary}
	}
	switch c.Op {
	case registry.OpCreated:
		*g = regState{Created: at, Status: string(c.Device.Status), Caller: c.Caller, KeyFP: fp}
	case registry.OpDeleted:
		g.Deleted, g.Status = at, "deleted"
	case registry.OpUpdated:
		if fp != ([2]string{}) && g.KeyFP != ([2]string{}) && fp != g.KeyFP {
			g.KeyChanged = at
			switch {
			case fp[0] != g.KeyFP[0] && fp[1] != g.KeyFP[1]:
				g.KeyChange = "both"
			case fp[0] != g.KeyFP[0]:
				g.KeyChange = "primary"
			default:
				g.KeyChange = "secondary"
			}
		}
		if fp != ([2]string{}) {
			g.KeyFP = fp
		}
		st := string(c.Device.Status)
		if st == string(registry.Disabled) && g.Status != st {
			g.Disabled = at
		}
		if st == string(registry.Enabled) && g.Status == string(registry.Disabled) {
			g.Enabled = at
		}
		g.Status = st
	}
}

// Devices is the number of devices with a history.
func (e *Engine) Devices() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.devices)
}

// expiryFromDetail reads the expiry out of a refusal's detail ("SAS token
// expired: expired at 2026-12-06T10:00:00Z"): refusals do not carry the
// token's expiry as a field.
func expiryFromDetail(detail string) (time.Time, bool) {
	_, rest, ok := strings.Cut(detail, "expired at ")
	if !ok {
		return time.Time{}, false
	}
	if i := strings.IndexAny(rest, " ;,)"); i >= 0 {
		rest = rest[:i]
	}
	t, err := time.Parse(time.RFC3339, rest)
	return t, err == nil
}
