// Command eventlat measures Tether's disconnect → webhook delivered latency.
//
// It builds and starts `tether serve --dev` on free loopback ports, registers
// N devices over the REST API (derived keys, bench/internal/stormrun), starts
// an Event Grid webhook receiver on 127.0.0.1 in this process, creates a
// subscription for DeviceConnected and DeviceDisconnected (validated by the
// handshake), connects every device over plain-TCP MQTT 3.1.1 (raw client,
// source addresses spread over 127.0.0.2…), and then, for each rate, cycles
// devices round-robin at a paced, open-loop rate: DISCONNECT + close, then
// reconnect at once. Every cycle makes two connection events (disconnected,
// connected), so a rate of R events/s is R/2 cycles/s.
//
// Latency of each DeviceDisconnected = arrival at the receiver − the client's
// close time (taken just before the DISCONNECT is written), and also
// arrival − the event's eventTime (the hub's timestamp). The k-th
// DeviceDisconnected of a device is matched with its k-th close (the hub
// delivers a device's events in order; counts are checked).
//
// Journal sync: the hub has no option to fsync the journal on every write
// (no serve flag or TETHER_* variable; internal/journal starts the embedded
// NATS server without SyncAlways), so the hub cannot be measured that way.
// With -sync-probe (default on) eventlat instead measures what that option
// would cost the journal itself: an embedded JetStream server of the version
// the hub embeds, on the same file system, publishing ConnectionEvent-sized
// messages with message ids at the same rates, with SyncAlways off and on
// (publish → stored acknowledgement latency).
//
// Everything is bounded: -timeout (by default enough for the rates,
// durations and probes asked: 100 s + per rate 2 × duration + drain + 60 s,
// + the probes) kills the hub and exits.
//
// Issue 21 additions: -sweep drives 1,000 … 10,000 events/s and names the
// highest rate sustained (p99 ≤ 50 ms from close, drained, ≥ 95 % of the
// rate achieved, no event missing or out of order); every rate reports
// the hub's and the driver's CPU per cycle (CPU time from the phase's start
// until the hub is idle again, the hub's idle rate taken out), the load
// average, and with -profile the hub's CPU by stage of the event path
// (stages.go).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/tether-hub/tether/bench/internal/procstat"
)

type config struct {
	devices   int
	rates     []int
	duration  time.Duration
	batch     int
	par       int
	srcFrom   int
	srcTo     int
	tetherBin string
	keep      bool
	timeout   time.Duration
	drain     time.Duration
	syncProbe bool
	probeDur  time.Duration
	out       string
	seed      string
	profile   bool
	trace     bool
	selfProf  string
	selfTrace string
	samples   string
	// connectRate and plainRate are passed to the hub as
	// --max-connect-rate and --max-plain-connect-rate (0: the hub sizes
	// them itself, as a default hub does).
	connectRate, plainRate float64
}

// sweepRates are the rates -sweep drives, lowest first: the report names
// the highest one sustained with p99 ≤ 50 ms.
const sweepRates = "1000,2000,3000,4000,5000,6000,7000,8000,10000"

// driverGOGC is eventlat's own GC percent unless GOGC is set.
const driverGOGC = 400

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	var c config
	var rates string
	flag.IntVar(&c.devices, "devices", 5000, "devices registered, connected and cycled round-robin")
	flag.StringVar(&rates, "rates", "1000,5000", "connection events per second to drive (list); each cycle (disconnect + reconnect) is two events")
	flag.DurationVar(&c.duration, "duration", 20*time.Second, "measured time per rate")
	flag.IntVar(&c.batch, "batch", 1, "subscription maxEventsPerBatch (Event Grid default 1)")
	flag.IntVar(&c.par, "par", 256, "cycles in flight at most (workers)")
	flag.IntVar(&c.srcFrom, "src-from", 2, "first source address 127.0.0.<src-from>")
	flag.IntVar(&c.srcTo, "src-to", 60, "last source address 127.0.0.<src-to>")
	flag.StringVar(&c.tetherBin, "tether-bin", "", "tether binary to run (default: go build ./cmd/tether)")
	flag.BoolVar(&c.keep, "keep", false, "keep the work dir (hub data and log)")
	flag.DurationVar(&c.timeout, "timeout", 0, "hard cap for the whole run (default: enough for the rates, durations and probes asked)")
	flag.DurationVar(&c.drain, "drain", 20*time.Second, "how long to wait after each rate for the last deliveries")
	flag.BoolVar(&c.syncProbe, "sync-probe", true, "also measure JetStream publish latency with SyncAlways off/on at the same rates")
	flag.DurationVar(&c.probeDur, "probe-duration", 5*time.Second, "duration of each sync-probe run")
	flag.StringVar(&c.out, "out", "", "also write the markdown report to this file")
	flag.StringVar(&c.seed, "seed", "tether-bench-eventlat", "device key derivation seed")
	flag.BoolVar(&c.profile, "profile", false, "run the hub with --debug-addr and save its CPU profile (the phase and 5 s of its drain) per rate into the work dir (implies -keep)")
	flag.StringVar(&c.selfProf, "driver-profile", "", "write eventlat's own CPU profile (driver and receiver) over the rates to this file")
	flag.Float64Var(&c.connectRate, "max-connect-rate", 0, "the hub's --max-connect-rate (0: the hub's own sizing, which prices the driver's plain-TCP connects apart from TLS ones; a positive rate with no -max-plain-connect-rate applies to every connect; negative: off)")
	flag.Float64Var(&c.plainRate, "max-plain-connect-rate", 0, "the hub's --max-plain-connect-rate (0: the hub's own; negative: plain-TCP connects take no turn of the hub-wide rate)")
	flag.StringVar(&c.selfTrace, "driver-trace", "", "write an execution trace of eventlat itself (driver and receiver) over the first rate's first 3 s to this file")
	flag.StringVar(&c.samples, "samples", "", "write every paired disconnect (close, eventTime, arrival; unix ns) and the hub's start to this CSV file, to lay beside the hub's GODEBUG=gctrace=1 lines")
	flag.BoolVar(&c.trace, "trace", false, "with -profile, also save a 5 s execution trace per rate (it costs the hub CPU)")
	sweep := flag.Bool("sweep", false, "rate sweep: drive "+sweepRates+" events/s (unless -rates is given) and report the highest rate sustained with p99 ≤ 50 ms")
	flag.Parse()
	if os.Getenv("GOGC") == "" {
		// Fewer GC cycles for eventlat itself: its heap is small (tens of
		// MB: the closes and arrivals it pairs), and every mark it runs
		// takes CPU from the 2 cores the hub is measured on.
		debug.SetGCPercent(driverGOGC)
	}
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *sweep && !set["rates"] {
		rates = sweepRates
	}
	if c.profile {
		c.keep = true
	}
	for _, s := range strings.Split(rates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || r < 2 {
			log.Fatalf("-rates: %q is not a rate ≥ 2", s)
		}
		c.rates = append(c.rates, r)
	}
	if !set["timeout"] {
		// Setup, then per rate: the quiet wait, the phase (longer than
		// asked when the hub or the machine cannot keep the pace), the
		// drain, the hub going quiet, and the journal probes.
		n := time.Duration(len(c.rates))
		c.timeout = 100*time.Second + n*(2*c.duration+c.drain+60*time.Second)
		if c.syncProbe {
			c.timeout += 2 * n * (c.probeDur + 5*time.Second)
		}
	}
	if c.devices < 1 || c.devices > 15000 {
		log.Fatal("-devices: 1…15000 (one process may hold 20,000 files)")
	}
	if c.srcFrom < 2 || c.srcTo > 254 || c.srcFrom > c.srcTo {
		log.Fatal("-src-from/-src-to: 2 ≤ from ≤ to ≤ 254")
	}

	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	// The soft deadline (ctx) ends the rate in progress and reports; this
	// one kills everything if even that hangs.
	hard := time.AfterFunc(c.timeout+45*time.Second, func() {
		killChildren()
		log.Fatalf("hard timeout %s: killed", c.timeout)
	})
	defer hard.Stop()

	work, err := os.MkdirTemp("", "eventlat-")
	if err != nil {
		log.Fatal(err)
	}
	rep, err := run(ctx, c, work)
	killChildren()
	if err != nil {
		log.Printf("work dir kept: %s", work)
		log.Fatal(err)
	}
	if !c.keep {
		_ = os.RemoveAll(work)
	} else {
		log.Printf("work dir kept: %s", work)
	}
	md := rep.markdown()
	fmt.Print(md)
	if c.out != "" {
		if err := os.WriteFile(c.out, []byte(md), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

func run(ctx context.Context, c config, work string) (*report, error) {
	rep := &report{cfg: c, started: time.Now(), goVersion: runtime.Version(), machine: machineLine()}
	bin := c.tetherBin
	if bin == "" {
		bin = filepath.Join(work, "tether")
		log.Printf("building ./cmd/tether")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tether")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("go build ./cmd/tether (run from the repository root): %w", err)
		}
	}
	rep.commit = gitDescribe()
	if c.tetherBin != "" {
		// The tree eventlat runs in need not be the one the hub was built
		// from: say which binary was measured.
		rep.commit += " (eventlat's tree; the hub measured is the binary " + c.tetherBin + ")"
	}

	var hubArgs []string
	for _, r := range []struct {
		flag string
		v    float64
	}{{"--max-connect-rate", c.connectRate}, {"--max-plain-connect-rate", c.plainRate}} {
		if r.v != 0 {
			hubArgs = append(hubArgs, r.flag, strconv.FormatFloat(r.v, 'f', -1, 64))
		}
	}
	h, err := startHub(ctx, bin, filepath.Join(work, "data"), filepath.Join(work, "tether.log"), c.profile, hubArgs...)
	if err != nil {
		return nil, err
	}
	defer h.stop(15 * time.Second)
	hubStart, err := procStart(h.pid())
	if err != nil && c.samples != "" {
		log.Printf("hub start time: %v", err)
	}
	rep.throttle = h.throttleLine()
	log.Printf("hub %s", rep.throttle)
	api, err := newHubAPI(ctx, h.dataDir, h.httpsAddr)
	if err != nil {
		return nil, err
	}
	fl := newFleet(c)
	log.Printf("registering %d devices", c.devices)
	if err := api.createDevices(ctx, fl.devs, 32); err != nil {
		return nil, err
	}

	rc, err := startReceiver(c.devices)
	if err != nil {
		return nil, err
	}
	defer rc.close()
	if err := api.createSubscription(ctx, rc.url, c.batch); err != nil {
		return nil, err
	}
	log.Printf("subscription validated (receiver %s, maxEventsPerBatch %d)", rc.url, c.batch)

	t0 := time.Now()
	if err := fl.connectAll(ctx, h.tcpAddr); err != nil {
		return nil, err
	}
	log.Printf("%d devices connected in %.1fs", c.devices, time.Since(t0).Seconds())
	if !rc.waitConnected(ctx, c.devices, c.drain) {
		log.Printf("warning: only %d of %d initial DeviceConnected arrived within %s", rc.connectedTotal(), c.devices, c.drain)
	}
	if _, ok := procstat.WaitQuiet(h.pid(), time.Second, 1, 0.10, 15*time.Second); !ok {
		log.Printf("warning: the hub did not go quiet before the first rate")
	}

	if c.selfProf != "" {
		f, err := os.Create(c.selfProf)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	for i, rate := range c.rates {
		if ctx.Err() != nil {
			break
		}
		if busy, ok := waitMachineQuiet(ctx, 0.15, 30*time.Second); !ok {
			log.Printf("warning: the machine did not go quiet before rate %d (%.2f cores busy); other load is reported per rate", rate, busy)
		}
		prof := h.capture(work, fmt.Sprintf("rate-%d", rate), c.duration+5*time.Second, c.trace)
		ph, err := fl.runPhase(ctx, i, rate, h, rc)
		<-prof
		if err != nil {
			// Out of time: report the rates done, and this one marked.
			log.Printf("rate %d cut short: %v; reporting what was measured", rate, err)
			ph.cutShort = true
			rep.phases = append(rep.phases, ph)
			break
		}
		rep.phases = append(rep.phases, ph)
	}
	rep.match(fl, rc)
	if c.samples != "" {
		if err := writeSamples(c.samples, hubStart, rep); err != nil {
			log.Printf("samples: %v", err)
		}
	}
	h.stop(15 * time.Second) // the probes below run without the hub
	if c.profile {
		for _, ph := range rep.phases {
			res, total, err := profileStages(bin, filepath.Join(work, fmt.Sprintf("rate-%d-cpu.pprof", ph.rate)))
			if err != nil {
				log.Printf("stages of rate %d: %v", ph.rate, err)
				rep.stages = append(rep.stages, "")
				continue
			}
			rep.stages = append(rep.stages, stagesTable(res, total, ph.hubUsPerCycle))
		}
	}
	rep.hubLog = h.problems()

	if c.syncProbe && ctx.Err() == nil {
		for _, sync := range []bool{false, true} {
			for _, rate := range c.rates {
				if ctx.Err() != nil {
					break
				}
				pr, err := probeJournal(ctx, filepath.Join(work, fmt.Sprintf("probe-%v-%d", sync, rate)), sync, rate, c.probeDur)
				if err != nil {
					log.Printf("sync probe (sync=%v, %d/s): %v", sync, rate, err)
					continue
				}
				rep.probes = append(rep.probes, pr)
			}
		}
	}
	rep.elapsed = time.Since(rep.started)
	return rep, nil
}

// waitMachineQuiet waits until the whole machine used at most maxCores
// over two consecutive 1 s windows (the hub idle, nothing else running),
// at most timeout. It returns the last window's busy cores.
func waitMachineQuiet(ctx context.Context, maxCores float64, timeout time.Duration) (float64, bool) {
	deadline := time.Now().Add(timeout)
	streak := 0
	var busy float64
	prev, err := procstat.SystemBusy()
	if err != nil {
		return 0, false
	}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(time.Second)
		cur, err := procstat.SystemBusy()
		if err != nil {
			return 0, false
		}
		busy = float64(cur-prev) * procstat.TickDuration.Seconds()
		prev = cur
		if busy <= maxCores {
			if streak++; streak >= 2 {
				return busy, true
			}
		} else {
			streak = 0
		}
	}
	return busy, false
}

func gitDescribe() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	s := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		var files []string
		for _, l := range strings.Split(strings.TrimSpace(string(st)), "\n") {
			if len(l) > 3 {
				files = append(files, strings.TrimSpace(l[3:]))
			}
		}
		s += " + uncommitted changes to " + strings.Join(files, ", ")
	}
	return s
}

func machineLine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if _, v, ok := strings.Cut(l, ":"); ok {
					cpu = strings.TrimSpace(v)
				}
				break
			}
		}
	}
	return fmt.Sprintf("%d × %s, %s/%s", runtime.NumCPU(), cpu, runtime.GOOS, runtime.GOARCH)
}
