package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"runtime/trace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-hub/tether/bench/internal/procstat"
	"github.com/tether-hub/tether/bench/internal/stormrun"
	"github.com/tether-hub/tether/internal/mqttclient"
	"github.com/tether-hub/tether/internal/sas"
)

const devicePrefix = "lat-"

// closeRec is one client-side disconnect: the time just before the
// DISCONNECT packet was written, and the phase (rate index) it belongs to.
type closeRec struct {
	t     time.Time
	phase int
}

// device is a raw MQTT 3.1.1 client over plain TCP (clean session 0,
// keep-alive 60 s; one pre-signed SAS token, so a reconnect is never a
// token renewal).
type device struct {
	id, key, key2 string
	src           *net.TCPAddr
	connect       []byte

	mu        sync.Mutex
	conn      net.Conn
	closes    []closeRec
	connects  int
	failed    int
	abandoned int // connects given up after the CONNECT was written
}

type fleet struct {
	cfg  config
	devs []*device
}

func newFleet(c config) *fleet {
	f := &fleet{cfg: c, devs: make([]*device, c.devices)}
	nsrc := c.srcTo - c.srcFrom + 1
	exp := time.Now().Add(24 * time.Hour)
	for i := range f.devs {
		id := fmt.Sprintf("%s%d", devicePrefix, i)
		k1, k2 := stormrun.DeviceKeys(c.seed, id)
		tok, err := sas.Sign(sas.DeviceResource("localhost", id), k1, "", exp)
		if err != nil {
			log.Fatal(err)
		}
		user := "localhost/" + id + "/?api-version=" + stormrun.APIVersion + "&DeviceClientType=tether-eventlat%2F1.0"
		f.devs[i] = &device{id: id, key: k1, key2: k2,
			src:     &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(c.srcFrom+i%nsrc))},
			connect: mqttclient.ConnectPacket(id, user, tok, 60, false)}
	}
	return f
}

// dialLocked connects (d.mu held): dial, CONNECT, CONNACK 0, within 5 s.
// st, if not nil, gets the dial's and the CONNACK's wait.
func (d *device) dialLocked(addr string, st *cycleStages) error {
	// No TCP keep-alive: MQTT's own (60 s) covers the connection, and the
	// four setsockopt calls a Dialer makes for it were ~1.5 % of eventlat's
	// CPU at 2,500 connects/s.
	dl := net.Dialer{Timeout: 5 * time.Second, LocalAddr: d.src, Control: mqttclient.BindNoPort, KeepAlive: -1}
	t0 := time.Now()
	c, err := dl.Dial("tcp", addr)
	if err != nil {
		return err
	}
	t1 := time.Now()
	_ = c.SetDeadline(t1.Add(5 * time.Second))
	if _, err := c.Write(d.connect); err != nil {
		c.Close()
		return err
	}
	_, err = mqttclient.ReadConnack(c)
	if st != nil {
		st.dial, st.connack, st.sent = t1.Sub(t0), time.Since(t1), t1
	}
	if err != nil {
		// The CONNECT went out: the hub may have accepted it and will
		// record this session's connect and, now, its disconnect.
		d.abandoned++
		c.Close()
		return err
	}
	_ = c.SetDeadline(time.Time{})
	d.conn = c
	d.connects++
	return nil
}

func (d *device) dialRetry(addr string, tries int, st *cycleStages) error {
	var err error
	for i := range tries {
		if err = d.dialLocked(addr, st); err == nil {
			return nil
		}
		time.Sleep(time.Duration(i+1) * 50 * time.Millisecond)
	}
	d.failed++
	return err
}

// cycleStages is where one cycle spent its time, as the driver saw it.
type cycleStages struct {
	lock    time.Duration // waiting for the device (its previous cycle)
	close   time.Duration // DISCONNECT written and the socket closed
	dial    time.Duration // TCP connect (SYN → accepted by the kernel)
	connack time.Duration // CONNECT written → CONNACK read: the hub's connect path
	sent    time.Time     // when CONNECT was written (for -samples)
}

// disconnectPacket is MQTT 3.1.1's DISCONNECT (shared: Write only reads it).
var disconnectPacket = []byte{0xE0, 0}

// cycle disconnects (DISCONNECT, close) and reconnects at once.
func (d *device) cycle(addr string, phase int, st *cycleStages) error {
	t0 := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	st.lock = time.Since(t0)
	if d.conn != nil {
		t := time.Now()
		_ = d.conn.SetWriteDeadline(t.Add(time.Second))
		_, _ = d.conn.Write(disconnectPacket)
		_ = d.conn.Close()
		d.conn = nil
		d.closes = append(d.closes, closeRec{t: t, phase: phase})
		st.close = time.Since(t)
	}
	return d.dialRetry(addr, 3, st)
}

func (f *fleet) connectAll(ctx context.Context, addr string) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range min(f.cfg.par, 128) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(f.devs) {
					return
				}
				d := f.devs[i]
				d.mu.Lock()
				if err := d.dialRetry(addr, 5, nil); err != nil {
					failed.Add(1)
				}
				d.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d devices could not connect", n)
	}
	return ctx.Err()
}

func (f *fleet) totals() (closes, connects, failed int) {
	for _, d := range f.devs {
		d.mu.Lock()
		closes += len(d.closes)
		connects += d.connects
		failed += d.failed
		d.mu.Unlock()
	}
	return
}

// abandonedTotal is how many connects the devices gave up on after
// writing CONNECT (no CONNACK within 5 s): sessions the hub may have
// established and then seen dropped, whose events the driver did not make.
func (f *fleet) abandonedTotal() (n int) {
	for _, d := range f.devs {
		d.mu.Lock()
		n += d.abandoned
		d.mu.Unlock()
	}
	return n
}

// phase is what one rate measured on the driving side.
type phase struct {
	rate                      int // events/s asked (2 per cycle)
	start, end                time.Time
	cycles, failed            int
	achieved                  float64 // cycles/s × 2, over the phase
	slipP50, slipP99, slipMax time.Duration
	hubCores, selfCores       float64
	otherCores                float64 // machine-wide busy minus hub and driver: other load
	drained                   bool
	drainS                    float64
	posts                     int // POSTs the receiver answered in the phase and its drain
	// CPU time per cycle (both events delivered and logged) of the hub
	// and of the driver+receiver, from the phase's start until the hub
	// went quiet after the drain: the figure that compares across
	// machines and loads (wall-clock latency does not). The hub's idle
	// rate over that time is taken out of its figure.
	hubUsPerCycle, selfUsPerCycle float64
	hubIdleCores                  float64       // the hub's CPU before the phase, taken out of hubUsPerCycle
	loadAvg                       string        // /proc/loadavg's 1-min figure at the start and after the drain
	cutShort                      bool          // the run's -timeout ended it
	stages                        string        // where a cycle waited (stageQuantiles)
	cycleLog                      []cycleStages // each cycle's stages, kept for -samples
}

// traceSelf writes an execution trace of this process over d to path.
// The returned stop waits until it is written.
func traceSelf(path string, d time.Duration) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := trace.Start(f); err != nil {
		f.Close()
		return nil, err
	}
	done := make(chan struct{})
	time.AfterFunc(d, func() {
		trace.Stop()
		f.Close()
		close(done)
	})
	return func() { <-done }, nil
}

// stageQuantiles summarises the cycles' stages: p50 / p99 / max of each.
func stageQuantiles(st []cycleStages) string {
	if len(st) == 0 {
		return ""
	}
	pick := []struct {
		name string
		get  func(cycleStages) time.Duration
	}{
		{"device lock", func(c cycleStages) time.Duration { return c.lock }},
		{"close", func(c cycleStages) time.Duration { return c.close }},
		{"TCP connect", func(c cycleStages) time.Duration { return c.dial }},
		{"CONNECT → CONNACK", func(c cycleStages) time.Duration { return c.connack }},
		{"whole cycle", func(c cycleStages) time.Duration { return c.lock + c.close + c.dial + c.connack }},
	}
	ds := make([]time.Duration, len(st))
	var parts []string
	for _, p := range pick {
		for i, c := range st {
			ds[i] = p.get(c)
		}
		slices.Sort(ds)
		r := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e6) }
		parts = append(parts, fmt.Sprintf("%s %s / %s / %s ms", p.name, r(ds[len(ds)/2]), r(ds[len(ds)*99/100]), r(ds[len(ds)-1])))
	}
	return strings.Join(parts, "; ")
}

// loadAvg1 is the machine's 1-minute load average, as /proc/loadavg
// prints it ("?" if unreadable).
func loadAvg1() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// runPhase drives rate events/s (rate/2 cycles/s, open loop: cycle k is due
// at start + k/(rate/2)) for the configured duration, then waits for the
// deliveries to catch up.
func (f *fleet) runPhase(ctx context.Context, idx, rate int, h *hub, rc *receiver) (phase, error) {
	c := f.cfg
	ph := phase{rate: rate}
	cps := float64(rate) / 2
	total := int(cps * c.duration.Seconds())
	type job struct {
		i   int
		due time.Time
	}
	jobs := make(chan job, total+1)
	slips := make([]time.Duration, total)
	stages := make([]cycleStages, total)
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	for range c.par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				slips[j.i] = time.Since(j.due)
				d := f.devs[j.i%len(f.devs)]
				if err := d.cycle(h.tcpAddr, idx, &stages[j.i]); err != nil {
					failed.Add(1)
				}
				done.Add(1)
			}
		}()
	}
	// The hub's own idle cost (timers, samplers, polls), to take out of
	// the per-cycle figure: its CPU over 2 s before the phase.
	idle0, _ := procstat.CPU(h.pid())
	idleT := time.Now()
	time.Sleep(2 * time.Second)
	idle1, _ := procstat.CPU(h.pid())
	ph.hubIdleCores = float64(idle1-idle0) * procstat.TickDuration.Seconds() / time.Since(idleT).Seconds()
	_, _, posts0 := rc.totals()
	hub0, _ := procstat.CPU(h.pid())
	self0, _ := procstat.CPU(os.Getpid())
	sys0, _ := procstat.SystemBusy()
	load0 := loadAvg1()
	log.Printf("rate %d events/s (%.0f cycles/s over %d devices) for %s", rate, cps, len(f.devs), c.duration)
	ph.start = time.Now()
	if c.selfTrace != "" && idx == 0 {
		stop, err := traceSelf(c.selfTrace, 3*time.Second)
		if err != nil {
			return ph, err
		}
		defer stop()
	}
	for k := 0; k < total && ctx.Err() == nil; {
		due := int(time.Since(ph.start).Seconds()*cps) + 1
		for ; k < total && k < due; k++ {
			jobs <- job{i: k, due: ph.start.Add(time.Duration(float64(k) / cps * float64(time.Second)))}
		}
		time.Sleep(200 * time.Microsecond)
	}
	close(jobs)
	wg.Wait()
	ph.end = time.Now()
	hub1, _ := procstat.CPU(h.pid())
	self1, _ := procstat.CPU(os.Getpid())
	sys1, _ := procstat.SystemBusy()
	el := ph.end.Sub(ph.start).Seconds()
	ph.otherCores = float64((sys1-sys0)-(hub1-hub0)-(self1-self0)) * procstat.TickDuration.Seconds() / el
	ph.cycles, ph.failed = int(done.Load()), int(failed.Load())
	ph.achieved = 2 * float64(ph.cycles) / el
	ph.hubCores = float64(hub1-hub0) * procstat.TickDuration.Seconds() / el
	ph.selfCores = float64(self1-self0) * procstat.TickDuration.Seconds() / el
	slips = slips[:ph.cycles]
	slices.Sort(slips)
	if len(slips) > 0 {
		ph.slipP50, ph.slipP99, ph.slipMax = slips[len(slips)/2], slips[len(slips)*99/100], slips[len(slips)-1]
	}
	ph.stages = stageQuantiles(stages[:ph.cycles])
	if f.cfg.samples != "" {
		ph.cycleLog = stages[:ph.cycles]
	}
	log.Printf("  cycle stages (p50 / p99 / max): %s", ph.stages)
	closes, connects, _ := f.totals()
	ph.drained = waitUntil(ctx, c.drain, func() bool {
		conn, disc, _ := rc.totals()
		return disc >= closes && conn >= connects
	})
	ph.drainS = time.Since(ph.end).Seconds()
	// The log writer may still be busy after the last delivery: the
	// per-cycle figure counts until the hub is idle again (its idle cost,
	// ~1 % of a core, is counted too).
	if ctx.Err() == nil {
		_, _ = procstat.WaitQuiet(h.pid(), time.Second, 1, 0.10, 15*time.Second)
	}
	hub2, _ := procstat.CPU(h.pid())
	self2, _ := procstat.CPU(os.Getpid())
	if ph.cycles > 0 {
		busy := float64(hub2-hub0)*procstat.TickDuration.Seconds() - ph.hubIdleCores*time.Since(ph.start).Seconds()
		ph.hubUsPerCycle = max(0, busy) * 1e6 / float64(ph.cycles)
		ph.selfUsPerCycle = float64(self2-self0) * float64(procstat.TickDuration/time.Microsecond) / float64(ph.cycles)
	}
	ph.loadAvg = load0 + " → " + loadAvg1()
	_, _, posts1 := rc.totals()
	ph.posts = posts1 - posts0
	conn, disc, _ := rc.totals()
	log.Printf("  %d cycles (%d failed) in %.1fs = %.0f events/s; hub %.2f cores, driver+receiver %.2f cores, other load %.2f cores; schedule slip p99 %s; drained=%v in %.1fs (received %d/%d disconnects, %d/%d connects); CPU per cycle: hub %.0f µs (idle %.3f cores taken out), driver+receiver %.0f µs; load average %s",
		ph.cycles, ph.failed, el, ph.achieved, ph.hubCores, ph.selfCores, ph.otherCores, ph.slipP99.Round(time.Microsecond), ph.drained, ph.drainS, disc, closes, conn, connects,
		ph.hubUsPerCycle, ph.hubIdleCores, ph.selfUsPerCycle, ph.loadAvg)
	return ph, ctx.Err()
}
