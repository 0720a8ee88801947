package loggen

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/presence"
)

// Defaults of Options.
const (
	DefaultDevices = 10_000
	DefaultSpan    = 7 * 24 * time.Hour
	DefaultHub     = "loggen.azure-devices.net"
)

// Options configure New.
type Options struct {
	// Records is how many records the generator makes in all (> 0).
	Records int
	// Devices is the fleet size; default DefaultDevices.
	Devices int
	// End bounds the records: the newest come shortly before it. Default
	// time.Now().
	End time.Time
	// Span is how far back from End the records reach; default DefaultSpan.
	Span time.Duration
	// Seed makes the output reproducible; default 1.
	Seed uint64
	// Hub is the hub's host name; default DefaultHub (Resource LOGGEN).
	Hub string
	// Resource names the hub in Azure's terms; default Location "westeurope".
	Resource connlog.Resource
}

// Generator makes records; see the package doc. Not safe for concurrent use.
type Generator struct {
	o       Options
	rng     *rand.Rand
	start   time.Time
	session time.Duration // the mean session length (calibrated)
	epoch   uint64
	devs    []*device
	queue   deviceQueue
	pending []connlog.Record
	made    int
	stats   Stats
	// countOnly makes records with only their time (calibration passes):
	// the model runs the same, without the cost of the mappers.
	countOnly bool
}

// Stats counts what the generator has returned so far.
type Stats struct {
	Records int
	// ByCategory counts records per Category.
	ByCategory map[string]int
	// ByResult counts records per ResultType ("" = success).
	ByResult map[string]int
	// First and Last are the oldest and newest TimeGenerated returned.
	First, Last time.Time
}

// DeviceID is the id of the i-th device of the fleet (0-based):
// "device-00042". Benchmarks use it to pick a device that exists.
func DeviceID(i int) string { return fmt.Sprintf("device-%05d", i) }

// New checks o, fills the defaults and calibrates the session length so
// that o.Records records end near o.End.
func New(o Options) (*Generator, error) {
	if o.Records <= 0 {
		return nil, errors.New("loggen: Records must be positive")
	}
	if o.Devices == 0 {
		o.Devices = DefaultDevices
	}
	if o.Devices < 0 {
		return nil, errors.New("loggen: Devices must be positive")
	}
	if o.Span == 0 {
		o.Span = DefaultSpan
	}
	if o.Span < time.Minute {
		return nil, errors.New("loggen: Span must be at least a minute")
	}
	if o.End.IsZero() {
		o.End = time.Now()
	}
	o.End = o.End.UTC()
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Hub == "" {
		o.Hub = DefaultHub
	}
	if o.Resource.Location == "" {
		o.Resource.Location = "westeurope"
	}
	session := calibrate(o)
	// A counting pass finds when the Records-th record would happen; the
	// real run is shifted so that its newest record lands just before End.
	count := newGenerator(o, session, o.End.Add(-o.Span))
	count.countOnly = true
	var last time.Time
	for range o.Records {
		r, ok := count.next()
		if !ok {
			break
		}
		if r.TimeGenerated.After(last) {
			last = r.TimeGenerated
		}
	}
	shift := o.End.Add(-time.Millisecond).Sub(last)
	return newGenerator(o, session, o.End.Add(-o.Span).Add(shift)), nil
}

// pilotSession is the session length of the calibration run.
const pilotSession = time.Hour

// calibrate runs the model for a sample of the fleet over the whole span
// with sessions of pilotSession and scales the session length so that the
// full fleet makes about o.Records records in the span. Record counts are inversely proportional to the
// session length: every long interval of the model scales with it.
func calibrate(o Options) time.Duration {
	sample := min(o.Devices, 500)
	p := o
	p.Devices = sample
	p.Records = int(^uint(0) >> 1)
	g := newGenerator(p, pilotSession, o.End.Add(-o.Span))
	g.countOnly = true
	n := 0
	for {
		r, ok := g.next()
		if !ok || !r.TimeGenerated.Before(o.End) {
			break
		}
		n++
	}
	perDevice := float64(n) / float64(sample)
	want := float64(o.Records) / float64(o.Devices)
	s := time.Duration(float64(pilotSession) * perDevice / want)
	return max(s, time.Second)
}

func newGenerator(o Options, session time.Duration, start time.Time) *Generator {
	g := &Generator{
		o:       o,
		rng:     rand.New(rand.NewPCG(o.Seed, 0x7e74e7)),
		start:   start,
		session: session,
		stats:   Stats{ByCategory: map[string]int{}, ByResult: map[string]int{}},
	}
	g.epoch = presence.Filetime(g.start)
	g.devs = make([]*device, o.Devices)
	for i := range g.devs {
		d := &device{
			id:        DeviceID(i),
			sdk:       pickSDK(g.rng),
			protocol:  "MQTT",
			ip:        "10." + strconv.Itoa(i/65536%256) + "." + strconv.Itoa(i/256%256) + ".XXX",
			keepAlive: 60,
		}
		if g.rng.Float64() < 0.15 {
			d.protocol = "MQTT-WS"
		}
		if d.sdk.family == "java" {
			d.keepAlive = 230
		}
		if g.rng.Float64() < 0.05 {
			// Registered during the span: created, then connecting.
			d.state = stateNew
			d.next = g.start.Add(g.randDur(0, o.Span))
		} else {
			d.state = stateOffline
			d.next = g.start.Add(g.randDur(0, g.session))
		}
		g.devs[i] = d
	}
	g.queue = make(deviceQueue, len(g.devs))
	for i, d := range g.devs {
		g.queue[i] = queued{d.next.UnixNano(), d}
	}
	g.queue.init()
	return g
}

// Next returns up to n more records, oldest first; an empty slice when
// all Options.Records have been made.
func (g *Generator) Next(n int) []connlog.Record {
	n = min(n, g.o.Records-g.made)
	out := make([]connlog.Record, 0, max(n, 0))
	for len(out) < n {
		r, ok := g.next()
		if !ok {
			break
		}
		out = append(out, r)
	}
	g.made += len(out)
	for _, r := range out {
		g.stats.ByCategory[r.Category]++
		g.stats.ByResult[r.ResultType]++
		if g.stats.First.IsZero() || r.TimeGenerated.Before(g.stats.First) {
			g.stats.First = r.TimeGenerated
		}
		if r.TimeGenerated.After(g.stats.Last) {
			g.stats.Last = r.TimeGenerated
		}
	}
	g.stats.Records = g.made
	return out
}

// maxStepRecords is the most records one step of a device makes (a
// disconnect at token expiry: two; a disable: the registry write and the
// disconnect).
const maxStepRecords = 2

// Skip moves past the next n records without making them (fewer if the
// generator ends first) and returns how many it skipped: what Next returns
// after it is what it would have returned after Next calls for n records.
// A benchmark continues a store filled by an earlier run this way. The
// model runs as for Next; only the mappers are left out, except for a step
// whose records reach past the skipped ones, which runs in full. Stats
// count the skipped records in Records only.
func (g *Generator) Skip(n int) int {
	n = min(n, g.o.Records-g.made)
	skipped := 0
	for skipped < n {
		// A step runs only once pending is empty, and its records (at most
		// maxStepRecords) follow the skipped ones so far: counted only, they
		// are all skipped.
		g.countOnly = n-skipped >= maxStepRecords
		if _, ok := g.next(); !ok {
			break
		}
		skipped++
	}
	g.countOnly = false
	g.made += skipped
	g.stats.Records = g.made
	return skipped
}

// Stats returns the counts so far (the maps are the generator's own).
func (g *Generator) Stats() Stats { return g.stats }

// SessionLength is the calibrated mean session length.
func (g *Generator) SessionLength() time.Duration { return g.session }

// next returns the next record, stepping the earliest device when none is
// pending.
func (g *Generator) next() (connlog.Record, bool) {
	for len(g.pending) == 0 {
		if len(g.queue) == 0 {
			return connlog.Record{}, false
		}
		g.step(g.queue[0].d)
		g.queue.fix0()
	}
	r := g.pending[0]
	g.pending = g.pending[1:]
	return r, true
}

// randDur is uniform in [lo, hi).
func (g *Generator) randDur(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(g.rng.Int64N(int64(hi-lo)))
}

// scaled is the session length times a factor uniform in [lo, hi).
func (g *Generator) scaled(lo, hi float64) time.Duration {
	return time.Duration(float64(g.session) * (lo + (hi-lo)*g.rng.Float64()))
}
