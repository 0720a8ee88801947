package sim

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// step is one planned fault action of a device, at an offset from the
// run's start.
type step struct {
	at   time.Duration
	kind FaultKind
	undo bool // re-enable (disabled)
}

// plan is what the faults mean for one device.
type plan struct {
	steps   []step  // one-shot steps, by time
	rates   []Fault // faults by rate: the device draws its own times
	silent  bool    // picked for silence: short keep-alive, goes silent at its step
	slow    bool    // slow TLS handshakes, always
	twinAt  time.Duration
	hasTwin bool
}

// picked reports whether device i (of n) is one of the count devices a
// fault of kind k chooses: evenly spaced, offset per kind, so kinds with
// small counts pick different devices and every process of a split run
// agrees without talking.
func picked(k FaultKind, seed uint64, i, n, count int) bool {
	if count <= 0 {
		return false
	}
	if count >= n {
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(k))
	off := int((h.Sum64() ^ seed) % uint64(n))
	j := (i - off + n) % n
	// j is picked when a multiple of n/count falls in [j, j+1).
	step := float64(n) / float64(count)
	m := math.Ceil(float64(j) / step)
	return m*step < float64(j+1) && int(m) < count
}

// faultCount is how many devices a count or fraction fault picks.
func faultCount(f Fault, n int) int {
	if f.Count > 0 {
		return min(f.Count, n)
	}
	if f.Fraction > 0 {
		return max(1, int(math.Round(f.Fraction*float64(n))))
	}
	return 0
}

// planFor builds device i's plan. rampEnd is when the last device is due
// to connect; window is where one-shot faults land.
func planFor(c *Config, i int, r *rand.Rand, rampEnd time.Duration) plan {
	var p plan
	lo := rampEnd + 5*time.Second
	hi := lo + time.Minute
	if c.Duration > 0 {
		hi = max(lo, rampEnd+time.Duration(0.6*float64(c.Duration-rampEnd)))
	}
	oneShot := func() time.Duration { return lo + time.Duration(r.Float64()*float64(hi-lo)) }
	for _, f := range c.Faults {
		if f.Kind == FaultStorm {
			p.steps = append(p.steps, step{at: f.At, kind: FaultStorm})
			continue
		}
		if f.Kind == FaultHubCrash {
			continue // the run's, not a device's (Run kills the hub)
		}
		if f.PerMinute > 0 {
			p.rates = append(p.rates, f)
			continue
		}
		if !picked(f.Kind, c.Seed, i, c.Devices, faultCount(f, c.Devices)) {
			continue
		}
		switch f.Kind {
		case FaultSlowTLS:
			p.slow = true
		case FaultDup:
			p.hasTwin, p.twinAt = true, oneShot()
		case FaultSilence:
			p.silent = true
			p.steps = append(p.steps, step{at: oneShot(), kind: f.Kind})
		case FaultDisabled:
			at := oneShot()
			p.steps = append(p.steps, step{at: at, kind: f.Kind}, step{at: at + c.DisableFor, kind: f.Kind, undo: true})
		default:
			p.steps = append(p.steps, step{at: oneShot(), kind: f.Kind})
		}
	}
	slices.SortStableFunc(p.steps, func(a, b step) int { return int(a.at - b.at) })
	return p
}

// nextRate draws the next time after now of a fault with rate f.PerMinute
// per device per minute (exponential gaps: a Poisson process).
func nextRate(f Fault, now time.Duration, r *rand.Rand) time.Duration {
	return now + time.Duration(r.ExpFloat64()/f.PerMinute*float64(time.Minute))
}
