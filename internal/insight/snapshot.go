package insight

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io"
)

// snapshotVersion changes when the snapshot's shape does; an engine
// refuses other versions (and is rebuilt from the journal).
const snapshotVersion = 1

// ErrSnapshot wraps every error of Load: the snapshot is unusable, and the
// engine should be rebuilt from the journal.
var ErrSnapshot = errors.New("insight: unusable snapshot")

type snapshot struct {
	Version   int
	Hub       string
	Conn, Reg uint64
	Now       int64
	LastSweep int64
	Applied   uint64
	Strs      []string
	Devices   []*device
	Det       detectorSnap
}

type detectorSnap struct {
	Slots    []secSlot
	Cur      int64
	Drops    []drop
	Baseline float64
	Open     *openSnap
	Closed   []Incident
}

type openSnap struct {
	Incident     Incident
	Devices      map[string]bool
	Dims         [numDims]map[string]int
	Published    bool
	DropEnded    bool
	QuietSince   int64
	LastRecovery int64
}

// Save writes the engine's whole state, with the journal positions it
// accounts for, to w (gob). The feed saves it now and then and at stop, so
// a restart resumes from the positions instead of the journal's start.
func (e *Engine) Save(w io.Writer) error {
	e.mu.Lock()
	s := snapshot{
		Version: snapshotVersion, Hub: e.o.Hub, Conn: e.connSeq, Reg: e.regSeq, Now: e.now, LastSweep: e.lastSweep,
		Applied: e.applied, Strs: e.strs.Strs, Devices: make([]*device, 0, len(e.devices)),
		Det: detectorSnap{Slots: e.det.slots, Cur: e.det.cur, Drops: e.det.drops, Baseline: e.det.baseline, Closed: e.det.closed},
	}
	for _, d := range e.devices {
		s.Devices = append(s.Devices, d)
	}
	if o := e.det.open; o != nil {
		s.Det.Open = &openSnap{Incident: o.Incident, Devices: o.devices, Dims: o.dims, Published: o.published,
			DropEnded: o.dropEnded, QuietSince: o.quietSince, LastRecovery: o.lastRecovery}
	}
	// Encoding under the lock keeps the state consistent with the
	// positions; it takes a few milliseconds per thousand devices.
	err := gob.NewEncoder(w).Encode(&s)
	e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("insight: saving the state: %w", err)
	}
	return nil
}

// Load replaces the engine's state with a saved one. On error the engine
// is left as it was.
func (e *Engine) Load(r io.Reader) error {
	var s snapshot
	if err := gob.NewDecoder(r).Decode(&s); err != nil {
		return fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("%w: version %d, this hub reads %d", ErrSnapshot, s.Version, snapshotVersion)
	}
	devices := make(map[string]*device, len(s.Devices))
	active := map[string]struct{}{}
	nConn, nFlap := 0, 0
	for _, d := range s.Devices {
		if !d.valid(uint32(len(s.Strs))) {
			return fmt.Errorf("%w: a malformed device", ErrSnapshot)
		}
		devices[d.ID] = d
		if d.Live.Connected {
			nConn++
		}
		if d.FlapOn {
			nFlap++
		}
		if d.Flap.Stamp != 0 {
			active[d.ID] = struct{}{}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.devices, e.active, e.nConnected, e.nFlapping = devices, active, nConn, nFlap
	e.connSeq, e.regSeq, e.now, e.lastSweep, e.applied = s.Conn, s.Reg, s.Now, s.LastSweep, s.Applied
	e.changes++
	e.strs = strtab{Strs: s.Strs}
	e.strs.rebuild()
	e.det = detector{slots: s.Det.Slots, cur: s.Det.Cur, drops: s.Det.Drops, baseline: s.Det.Baseline, closed: s.Det.Closed}
	if o := s.Det.Open; o != nil {
		e.det.open = &openIncident{Incident: o.Incident, devices: o.Devices, dims: o.Dims, published: o.Published,
			dropEnded: o.DropEnded, quietSince: o.QuietSince, lastRecovery: o.LastRecovery}
		if e.det.open.devices == nil {
			e.det.open.devices = map[string]bool{}
		}
		for i := range e.det.open.dims {
			if e.det.open.dims[i] == nil {
				e.det.open.dims[i] = map[string]int{}
			}
		}
	}
	return nil
}

// valid checks what indexes a device holds against the string table's
// size.
func (d *device) valid(nstr uint32) bool {
	if d == nil || d.ID == "" || len(d.Ring) > RingSize || (len(d.Ring) < RingSize && uint64(len(d.Ring)) != d.N) {
		return false
	}
	for _, r := range d.Ring {
		if r.Src >= nstr || r.SDK >= nstr || r.Class >= numClasses || int(r.Reason) >= len(reasonNames) {
			return false
		}
	}
	for _, s := range d.Srcs {
		if s.Src >= nstr {
			return false
		}
	}
	for _, s := range d.SDKs {
		if s.SDK >= nstr {
			return false
		}
	}
	return d.Live.Src < nstr && d.Live.SDK < nstr && d.Probe.Src < nstr
}
