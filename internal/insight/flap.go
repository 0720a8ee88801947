package insight

import (
	"math"
	"slices"
	"time"
)

// The flap score is a device's reconnects in the last hour: connects that
// are neither token renewals, returns after a hub-side end or a probe, nor
// its first. It is kept in twelve five-minute slots, so it moves in
// five-minute steps and costs 28 bytes a device.
const (
	flapSlot      = 5 * time.Minute
	flapSlots12   = 12
	msFlapSlot    = int64(flapSlot / time.Millisecond)
	recentFlapped = 3 // the trend compares the last 3 slots (15 min) with the 9 before
)

// flapSlots are the reconnect counts of the last hour. Stamp is the
// number of the newest slot (time / 5 min) plus one.
type flapSlots struct {
	Stamp int32
	N     [flapSlots12]uint16
}

// advance moves the slots to slot s (older ones fall out).
func (f *flapSlots) advance(s int32) {
	if f.Stamp == 0 || s-f.Stamp >= flapSlots12 {
		*f = flapSlots{Stamp: s}
		return
	}
	for f.Stamp < s {
		f.Stamp++
		f.N[int(f.Stamp)%flapSlots12] = 0
	}
}

func slotOf(at int64) int32 { return int32(at/msFlapSlot) + 1 }

// add counts one reconnect at time at (an event older than the slots is
// ignored).
func (f *flapSlots) add(at int64) {
	s := slotOf(at)
	if s > f.Stamp {
		f.advance(s)
	}
	if f.Stamp-s >= flapSlots12 {
		return
	}
	i := int(s) % flapSlots12
	if f.N[i] < 1<<16-1 {
		f.N[i]++
	}
}

// score is the reconnects in the hour ending at now, and the trend: the
// rate of the last 15 minutes against the 45 before, per hour.
func (f *flapSlots) score(now int64) (score int, recent, before float64) {
	s := slotOf(now)
	if f.Stamp == 0 || s-f.Stamp >= flapSlots12 {
		return 0, 0, 0
	}
	var rec, old int
	for k := range flapSlots12 {
		slot := s - int32(k)
		if slot > f.Stamp || f.Stamp-slot >= flapSlots12 {
			continue
		}
		n := int(f.N[int(slot)%flapSlots12])
		if k < recentFlapped {
			rec += n
		} else {
			old += n
		}
	}
	return rec + old, float64(rec) * 60 / (recentFlapped * 5), float64(old) * 60 / ((flapSlots12 - recentFlapped) * 5)
}

// Trend of a flap score.
const (
	TrendRising  = "rising"
	TrendFalling = "falling"
	TrendSteady  = "steady"
	TrendNew     = "new" // nothing in the 45 minutes before the last 15
)

func trendOf(recent, before float64) string {
	switch {
	case recent == 0 && before == 0:
		return TrendSteady
	case before == 0:
		return TrendNew
	case recent > before*1.5+2:
		return TrendRising
	case recent < before/1.5-2:
		return TrendFalling
	}
	return TrendSteady
}

// FlapScore is one device's flap score.
type FlapScore struct {
	DeviceID string `json:"deviceId"`
	// Score is the reconnects in the last hour, renewals, hub-side returns
	// and probes excluded.
	Score int `json:"score"`
	// RecentPerHour and BeforePerHour are the rates of the last 15 minutes
	// and of the 45 before, per hour; Trend compares them.
	RecentPerHour float64 `json:"recentPerHour"`
	BeforePerHour float64 `json:"beforePerHour"`
	Trend         string  `json:"trend"`
	Flapping      bool    `json:"flapping"`
	Connected     bool    `json:"connected"`
}

func (e *Engine) flapScore(d *device, now int64) FlapScore {
	sc, rec, bef := d.Flap.score(now)
	return FlapScore{
		DeviceID: d.ID, Score: sc, RecentPerHour: round1(rec), BeforePerHour: round1(bef),
		Trend: trendOf(rec, bef), Flapping: sc >= e.o.FlapThreshold, Connected: d.Live.Connected,
	}
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// Flapping returns the top devices by flap score now (score > 0), highest
// first, at most top (0: all). It walks only devices that reconnected in
// the last hour.
func (e *Engine) Flapping(top int) []FlapScore {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now
	var out []FlapScore
	for id := range e.active {
		d := e.devices[id]
		if d == nil {
			continue
		}
		if fs := e.flapScore(d, now); fs.Score > 0 {
			out = append(out, fs)
		}
	}
	slices.SortFunc(out, func(a, b FlapScore) int {
		if a.Score != b.Score {
			return b.Score - a.Score
		}
		if a.RecentPerHour != b.RecentPerHour {
			if a.RecentPerHour > b.RecentPerHour {
				return -1
			}
			return 1
		}
		if a.DeviceID < b.DeviceID {
			return -1
		}
		return 1
	})
	if top > 0 && len(out) > top {
		out = out[:top]
	}
	return out
}

// FlappingDevices is the number of devices whose flap score is at or above
// the threshold now (the flappingDevices metric).
func (e *Engine) FlappingDevices() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.nFlapping
}
