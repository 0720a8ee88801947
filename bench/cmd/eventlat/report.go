package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tether-hub/tether/bench/internal/benchfmt"
)

type report struct {
	cfg                        config
	started                    time.Time
	elapsed                    time.Duration
	goVersion, machine, commit string

	phases []phase
	lat    []phaseLat // per phase, same order
	// Devices whose DeviceDisconnected count differs from their closes
	// (their latencies cannot be paired and are left out).
	unmatched              int
	missingDisc, extraDisc int
	reordered              int // events delivered out of their device's order (or twice)
	abandoned              int // connects the driver gave up on after writing CONNECT
	notClient              int // DeviceDisconnected not caused by a client DISCONNECT (not paired)
	badPosts, unknown      int // POSTs the receiver refused; events of no device of the fleet (or another type)
	hubLog                 []string
	throttle               string // the hub's connect throttle (hub.throttleLine)
	probes                 []probe
	stages                 []string // per phase with -profile: the CPU breakdown by stage (markdown)
	samples                []sample // with -samples: every paired disconnect
}

// dist is a latency distribution.
type dist struct {
	n                       int
	p50, p90, p99, p999, mx time.Duration
}

func newDist(ds []time.Duration) dist {
	if len(ds) == 0 {
		return dist{}
	}
	slices.Sort(ds)
	q := func(f float64) time.Duration { return ds[min(len(ds)-1, int(f*float64(len(ds))))] }
	return dist{n: len(ds), p50: q(0.50), p90: q(0.90), p99: q(0.99), p999: q(0.999), mx: ds[len(ds)-1]}
}

type phaseLat struct {
	fromClose, fromEventTime, detect, connect dist
	// perSecond: from-close latency of the disconnects closed in each
	// second of the phase.
	perSecond []dist
	// missing: disconnects of the phase with no DeviceDisconnected when
	// the run ended (the latencies above leave them out).
	missing int
}

// match pairs each device's k-th close with its k-th DeviceDisconnected.
func (r *report) match(f *fleet, rc *receiver) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	r.reordered = rc.reordered
	r.abandoned = f.abandonedTotal()
	r.notClient = rc.notClient
	r.badPosts, r.unknown = rc.bad, rc.unknown
	n := len(r.phases)
	fromClose := make([][]time.Duration, n)
	fromEvent := make([][]time.Duration, n)
	detect := make([][]time.Duration, n)
	conn := make([][]time.Duration, n)
	perSec := make([][][]time.Duration, n)
	missing := make([]int, n)
	for p, ph := range r.phases {
		perSec[p] = make([][]time.Duration, int(ph.end.Sub(ph.start).Seconds())+1)
	}
	for i, d := range f.devs {
		d.mu.Lock()
		closes := d.closes
		d.mu.Unlock()
		arr := rc.disc[i]
		if len(arr) > len(closes) {
			// More than it made: pairing would guess; left out.
			r.unmatched++
			r.extraDisc += len(arr) - len(closes)
			continue
		}
		if len(arr) < len(closes) {
			// Not delivered (yet): the device's events come in order, so
			// its first len(arr) closes pair with what arrived and the
			// rest count as missing in their rate.
			r.unmatched++
			r.missingDisc += len(closes) - len(arr)
			for _, c := range closes[len(arr):] {
				if c.phase < n {
					missing[c.phase]++
				}
			}
		}
		for k, c := range closes[:len(arr)] {
			if c.phase >= n {
				continue
			}
			a := arr[k]
			fromClose[c.phase] = append(fromClose[c.phase], a.at.Sub(c.t))
			if r.cfg.samples != "" {
				r.samples = append(r.samples, sample{phase: c.phase, close: c.t, event: a.eventTime, arrived: a.at})
			}
			if s := int(c.t.Sub(r.phases[c.phase].start).Seconds()); s >= 0 && s < len(perSec[c.phase]) {
				perSec[c.phase][s] = append(perSec[c.phase][s], a.at.Sub(c.t))
			}
			fromEvent[c.phase] = append(fromEvent[c.phase], a.at.Sub(a.eventTime))
			detect[c.phase] = append(detect[c.phase], a.eventTime.Sub(c.t))
		}
		for _, a := range rc.conn[i] {
			for p, ph := range r.phases {
				if !a.eventTime.Before(ph.start) && a.eventTime.Before(ph.end) {
					conn[p] = append(conn[p], a.at.Sub(a.eventTime))
				}
			}
		}
	}
	for p := range r.phases {
		pl := phaseLat{
			fromClose: newDist(fromClose[p]), fromEventTime: newDist(fromEvent[p]),
			detect: newDist(detect[p]), connect: newDist(conn[p]), missing: missing[p],
		}
		for _, ds := range perSec[p] {
			pl.perSecond = append(pl.perSecond, newDist(ds))
		}
		r.lat = append(r.lat, pl)
	}
}

// sustainedWhy says why phase i does not count as sustained ("" if it
// does): p99 from close over 50 ms, a backlog left after the drain, less
// than 95 % of the rate achieved, failed cycles, or events missing or
// extra (the comparator's counts, for the whole run).
func (r *report) sustainedWhy(i int) string {
	ph, l := r.phases[i], r.lat[i]
	var why []string
	if ph.cutShort {
		why = append(why, "cut short by -timeout")
	}
	if l.fromClose.n == 0 {
		why = append(why, "nothing paired")
	} else if l.fromClose.p99 > 50*time.Millisecond {
		why = append(why, "p99 "+ms(l.fromClose.p99)+" ms")
	}
	if !ph.drained {
		why = append(why, "not drained")
	}
	if ph.achieved < 0.95*float64(ph.rate) {
		why = append(why, fmt.Sprintf("achieved %.0f/s", ph.achieved))
	}
	if ph.failed > 0 {
		why = append(why, fmt.Sprintf("%d failed cycles", ph.failed))
	}
	if l.missing > 0 {
		why = append(why, fmt.Sprintf("%d disconnects not delivered by the end of the run", l.missing))
	}
	if r.extraDisc > 0 {
		why = append(why, fmt.Sprintf("%d extra events in the run", r.extraDisc))
	}
	if r.notClient > r.abandoned {
		why = append(why, fmt.Sprintf("%d disconnects for another reason than the driver's, more than its %d abandoned connects", r.notClient, r.abandoned))
	}
	if r.reordered > 0 {
		why = append(why, fmt.Sprintf("%d events out of order", r.reordered))
	}
	if r.badPosts > 0 || r.unknown > 0 {
		why = append(why, fmt.Sprintf("%d POSTs refused, %d events of no device", r.badPosts, r.unknown))
	}
	return strings.Join(why, ", ")
}

// sustained is the highest rate whose phase was sustained (0: none).
func (r *report) sustained() int {
	best := 0
	for i, ph := range r.phases {
		if r.sustainedWhy(i) == "" && ph.rate > best {
			best = ph.rate
		}
	}
	return best
}

func (r *report) ratesTried() string {
	var s []string
	for _, ph := range r.phases {
		s = append(s, strconv.Itoa(ph.rate))
	}
	return strings.Join(s, ", ")
}

// perCycle prints a CPU-per-cycle figure; one of a phase that did not
// drain misses the work still queued (marked, not comparable).
func perCycle(us float64, drained bool) string {
	if !drained {
		return fmt.Sprintf("(%.0f, not drained)", us)
	}
	return fmt.Sprintf("%.0f", us)
}

func ms(d time.Duration) string { return benchfmt.Num(float64(d) / float64(time.Millisecond)) }

func (r *report) markdown() string {
	var b strings.Builder
	c := r.cfg
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("## Event delivery latency (bench/cmd/eventlat)\n\n")
	w("%s, %s, built from %s. %d devices over plain-TCP MQTT (sources 127.0.0.%d–%d), subscription for "+
		"DeviceConnected + DeviceDisconnected, maxEventsPerBatch %d, receiver in the driver's process; %s per rate; run took %.0f s.\n\n",
		r.machine, r.goVersion, r.commit, c.devices, c.srcFrom, c.srcTo, c.batch, c.duration, r.elapsed.Seconds())
	w("Rate = connection events per second (one cycle = DISCONNECT + reconnect = 2 events). Latency of each " +
		"DeviceDisconnected: **from close** = arrival at the receiver − client time just before it wrote DISCONNECT; " +
		"**from eventTime** = arrival − the event's eventTime (the hub's clock, same machine). Other load = machine-wide busy CPU " +
		"(/proc/stat) − hub − driver: other processes and kernel threads on the shared machine. Each rate starts once the " +
		"machine is quiet (≤ 0.15 cores busy for 2 s, waited for at most 30 s). **CPU per cycle** = the process's CPU " +
		"(/proc/<pid>/stat utime+stime) from the phase's start until the hub is idle again after the drain (every event " +
		"delivered and logged) ÷ cycles; for the hub, its idle rate (measured over 2 s before the phase) is taken out. " +
		"CPU time is the figure to compare across machines and loads; wall-clock latency depends on both.\n\n")
	w("| rate asked (events/s) | achieved | cycles | failed | disconnect→delivered p50 / p99 / max ms (from close) | p50 / p99 / max ms (from eventTime) | p99.9 from close | DeviceConnected p50 / p99 ms (from eventTime) | hub cores | driver+receiver cores | other load cores | hub CPU µs per cycle | driver+receiver CPU µs per cycle | load average (start → end) | schedule slip p99 ms | sustained (p99 ≤ 50 ms, drained, ≥ 95 %% achieved, none lost) |\n")
	w("|---:|---:|---:|---:|---|---|---:|---|---:|---:|---:|---:|---:|---|---:|---|\n")
	for i, ph := range r.phases {
		l := r.lat[i]
		verdict, why := "**yes**", r.sustainedWhy(i)
		if why != "" {
			verdict = "**no**: " + why
		}
		w("| %d | %.0f | %d | %d | %s / %s / %s | %s / %s / %s | %s | %s / %s | %.2f | %.2f | %.2f | %s | %s | %s | %s | %s |\n",
			ph.rate, ph.achieved, ph.cycles, ph.failed,
			ms(l.fromClose.p50), ms(l.fromClose.p99), ms(l.fromClose.mx),
			ms(l.fromEventTime.p50), ms(l.fromEventTime.p99), ms(l.fromEventTime.mx),
			ms(l.fromClose.p999), ms(l.connect.p50), ms(l.connect.p99),
			ph.hubCores, ph.selfCores, ph.otherCores, perCycle(ph.hubUsPerCycle, ph.drained), perCycle(ph.selfUsPerCycle, ph.drained),
			ph.loadAvg, ms(ph.slipP99), verdict)
	}
	if best := r.sustained(); best > 0 {
		w("\n**Highest rate sustained with p99 ≤ 50 ms: %d events/s** (of the rates tried: %s)", best, r.ratesTried())
		var below []string
		for i, ph := range r.phases {
			if ph.rate == best {
				w("; there the hub used %.2f cores (%s µs per cycle) and eventlat's driver and receiver %.2f cores (%s µs per cycle), other load %.2f cores",
					ph.hubCores, perCycle(ph.hubUsPerCycle, ph.drained), ph.selfCores, perCycle(ph.selfUsPerCycle, ph.drained), ph.otherCores)
			} else if ph.rate < best && r.sustainedWhy(i) != "" {
				below = append(below, strconv.Itoa(ph.rate))
			}
		}
		if len(below) > 0 {
			w("; lower rates **not** sustained in this run: %s", strings.Join(below, ", "))
		}
		w(".\n")
	} else {
		w("\n**No rate tried was sustained with p99 ≤ 50 ms** (rates tried: %s).\n", r.ratesTried())
	}
	w("\nHub %s (a cycle is one plain-TCP connect: more cycles a second than plain_connect_rate, or connect_rate where there is none, wait their turn once the burst is spent).\n", r.throttle)
	w("\nWhere a cycle waited, driver's view, p50 / p99 / max:\n\n")
	for _, ph := range r.phases {
		w("- %d/s: %s\n", ph.rate, ph.stages)
	}
	w("\nClose → eventTime (the hub noticing the DISCONNECT and stamping the event): ")
	for i, ph := range r.phases {
		l := r.lat[i]
		w("%d/s p50 %s ms, p99 %s ms, max %s ms; ", ph.rate, ms(l.detect.p50), ms(l.detect.p99), ms(l.detect.mx))
	}
	w("\n\nFrom-close p99 / max ms of the disconnects made in each second of the run:\n\n")
	for i, ph := range r.phases {
		var parts []string
		for _, d := range r.lat[i].perSecond {
			if d.n > 0 {
				parts = append(parts, ms(d.p99)+"/"+ms(d.mx))
			}
		}
		w("- %d/s: %s\n", ph.rate, strings.Join(parts, " · "))
	}
	w("\nWebhook POSTs per rate (the phase and its drain; maxEventsPerBatch %d): ", r.cfg.batch)
	for _, ph := range r.phases {
		if ph.posts > 0 {
			w("%d/s %d (%.2f events per POST); ", ph.rate, ph.posts, 2*float64(ph.cycles)/float64(ph.posts))
		}
	}
	w("\n")
	w("\nPaired disconnects per rate: ")
	for i, ph := range r.phases {
		w("%d/s %d (%d not delivered); ", ph.rate, r.lat[i].fromClose.n, r.lat[i].missing)
	}
	w("devices whose DeviceDisconnected count differed from their closes: %d (%d missing, %d extra; a device with "+
		"missing ones has its first deliveries paired with its first closes — order is per device — and the rest counted "+
		"missing in their rate; after a rate that did not drain, missing = not yet delivered when the run ended; a device "+
		"with extra ones is left out. Only DeviceDisconnected with reason client are paired: the driver's closes all send "+
		"DISCONNECT; %d came for another reason, against %d connects the driver gave up on after writing CONNECT, "+
		"which the hub may have accepted and then seen dropped or taken over); "+
		"events delivered out of their device's sequence-number order or twice: %d; POSTs the receiver refused "+
		"(a body not a batch of events, or a request it could not frame): %d; events of no device of the fleet: %d.\n",
		r.unmatched, r.missingDisc, r.extraDisc, r.notClient, r.abandoned, r.reordered, r.badPosts, r.unknown)
	for i, t := range r.stages {
		if t != "" && i < len(r.phases) {
			w("\nHub CPU by stage at %d/s (its CPU profile over the phase and 5 s of the drain; stacks attributed by "+
				"bench/cmd/eventlat/stages.go; µs per cycle = share × the hub CPU per cycle above):\n\n%s", r.phases[i].rate, t)
		}
	}
	if len(r.hubLog) > 0 {
		w("\nHub WARN/ERROR log lines (first %d):\n\n```\n%s\n```\n", len(r.hubLog), strings.Join(r.hubLog, "\n"))
	}
	sync := "off (the default: fsync every 2 minutes)"
	if v, _ := strconv.ParseBool(os.Getenv("TETHER_JOURNAL_SYNC_ALWAYS")); v {
		sync = "on (TETHER_JOURNAL_SYNC_ALWAYS, passed to the hub: fsync before every ack)"
	}
	w("\n**Journal syncing on every write** in the hub measured above: %s; run again with "+
		"TETHER_JOURNAL_SYNC_ALWAYS=true (serve --journal-sync-always) to compare.", sync)
	if len(r.probes) > 0 {
		w(" What it would cost the journal: an embedded JetStream server (the version the hub embeds) in the same file system, " +
			"a file stream like TETHER_CONN (duplicates window 10 min), ~600-byte JSON messages with Nats-Msg-Id published " +
			"asynchronously at the same rates (at most 256 unacknowledged, as journal.Publisher keeps); latency from the time each " +
			"message was due (paced open loop) to its stored acknowledgement:\n\n")
		w("| SyncAlways | rate asked (msg/s) | achieved | ack p50 ms | ack p99 ms | ack max ms | server+client cores |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, p := range r.probes {
			w("| %v | %d | %.0f | %s | %s | %s | %.2f |\n", p.sync, p.rate, p.achieved, ms(p.lat.p50), ms(p.lat.p99), ms(p.lat.mx), p.cores)
		}
	} else {
		w("\n")
	}
	w("\n")
	return b.String()
}
