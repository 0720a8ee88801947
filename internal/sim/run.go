package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/tether-hub/tether/internal/hubclient"
)

// Env is what a run needs from its caller.
type Env struct {
	API *hubclient.Client // the hub's API as the owner policy
	// ConnString is the owner connection string (handed to workers).
	ConnString string
	Out        io.Writer // live view and report
	Live       bool      // redraw a one-screen live table (a terminal)
	JSON       bool      // JSON lines instead of text
	// WebhookAddr is where the observer listens (default 127.0.0.1:0);
	// WebhookURL, if set, is what the hub is told to call instead of the
	// listener's own URL (a hub on another machine).
	WebhookAddr, WebhookURL string
	// Spawn starts a worker process for spec (nil: no workers; runs over
	// PerProcess devices are refused).
	Spawn func(ctx context.Context, spec WorkerSpec) (Worker, error)
	// CrashHub kills the hub abruptly (SIGKILL: no clean shutdown) and
	// starts it again, returning once it accepts connections; the
	// hub-crash fault calls it (nil: the fault is refused).
	CrashHub func(ctx context.Context) error
	// RestartNode stops the cluster node at Config.MQTTAddrs[i] the way
	// an operator does (SIGTERM: a clean shutdown) and starts it again,
	// returning once it is back and caught up; the rolling-restart fault
	// calls it for each node in turn (nil: the fault is refused).
	RestartNode func(ctx context.Context, i int) error
	Logf        func(format string, a ...any)
}

// Worker is a started worker process: its JSON-line output and its exit.
type Worker struct {
	Out  io.ReadCloser
	Wait func() error
}

// Report is the outcome of a run.
type Report struct {
	Config      Config     `json:"config"`
	Started     time.Time  `json:"started"`
	Stopped     time.Time  `json:"stopped"`
	Interrupted bool       `json:"interrupted"` // stopped by the context before the duration
	Processes   int        `json:"processes"`
	Registered  int        `json:"registered"`
	RegisterS   float64    `json:"registerSeconds"`
	Stats       Snapshot   `json:"stats"`
	Expected    int        `json:"expectedEvents"`
	Observed    int        `json:"observedEvents"`
	LogRecords  int        `json:"logRecords"`
	Foreign     int        `json:"foreignEvents"` // events of devices that were not the run's
	SettleS     float64    `json:"settleSeconds"`
	Settled     bool       `json:"settled"`
	Comparison  Comparison `json:"comparison"`
	// Storm is the recovery from the storm fault (nil without one).
	Storm *StormRecovery `json:"storm,omitempty"`
	// Twins is the check of twins and direct methods (nil when the
	// devices use neither).
	Twins *TwinReport `json:"twins,omitempty"`
	// HubCrash is the hub-crash fault as it happened (nil without it).
	HubCrash *HubCrash `json:"hubCrash,omitempty"`
	// RollingRestart is the rolling-restart fault as it happened (nil
	// without it).
	RollingRestart *RollingRestart `json:"rollingRestart,omitempty"`
	// Scenarios is the check of the diagnoses against the injected
	// causes (nil without --scenario).
	Scenarios *ScenarioReport `json:"scenarios,omitempty"`
	Notes     []string        `json:"notes,omitempty"`
}

// HubCrash is when the simulator killed the hub and how long it took to
// come back.
type HubCrash struct {
	At    time.Time `json:"at"`
	BackS float64   `json:"backSeconds"`
	Err   string    `json:"error,omitempty"`
}

// RollingRestart is when the simulator began restarting the cluster's
// nodes in turn, and how long each node's stop and start took.
type RollingRestart struct {
	At    time.Time `json:"at"`
	Steps []float64 `json:"stepSeconds"`
	Err   string    `json:"error,omitempty"`
}

// OK reports whether the hub reported everything as expected.
func (r *Report) OK() bool {
	c := r.Comparison
	return c.Missing == 0 && c.OutOfOrder == 0 && c.Duplicated == 0 && c.WrongCode == 0 && c.Unexpected == 0 &&
		c.RenewalsUnpairedDiff >= 0 && c.RenewalsUnpairedDiff <= c.RenewalsUnsure && r.Twins.OK()
}

// Run simulates cfg against the hub of env and returns the comparison.
// Cancelling ctx stops the run early (devices disconnect; the report is
// still made).
func Run(ctx context.Context, cfg Config, env Env) (*Report, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if env.Logf == nil {
		env.Logf = func(string, ...any) {}
	}
	if env.Out == nil {
		env.Out = io.Discard
	}
	procs := (cfg.Devices + cfg.PerProcess - 1) / cfg.PerProcess
	if procs > 1 && env.Spawn == nil {
		return nil, fmt.Errorf("%d devices need %d processes of at most %d; no way to start workers", cfg.Devices, procs, cfg.PerProcess)
	}
	if _, ok := cfg.Faults.Get(FaultDisabled); ok && env.API == nil {
		return nil, errors.New("the disabled fault needs the hub's API")
	}
	if (cfg.MethodRate > 0 || cfg.DesiredRate > 0) && env.API == nil {
		return nil, errors.New("direct method calls and desired updates need the hub's API")
	}
	if _, ok := cfg.HubCrashAt(); ok && env.CrashHub == nil {
		return nil, errors.New("the hub-crash fault needs a way to kill the hub and start it again (tether sim --hub-crash-cmd)")
	}
	if _, ok := cfg.Faults.Get(FaultRollingRestart); ok && (env.RestartNode == nil || procs > 1) {
		return nil, errors.New("the rolling-restart fault needs a way to restart each node (Env.RestartNode) and one process (its stops are known in this one)")
	}
	rep := &Report{Config: cfg, Processes: procs}
	rep.Config.CAPEM = nil // not a result
	v := newView(env, &cfg)
	seed := make([]byte, 16)
	_, _ = rand.Read(seed)
	keySeed := hex.EncodeToString(seed)

	// Devices, in bulk.
	t0 := time.Now()
	devs := make([]hubclient.Device, cfg.Devices)
	for i := range devs {
		id := cfg.DeviceID(i)
		devs[i] = hubclient.Device{ID: id, PrimaryKey: DeviceKey(keySeed, id), SecondaryKey: DeviceKey(keySeed, id+"/secondary")}
	}
	offline := OfflineIDs(&cfg)
	for _, id := range offline {
		devs = append(devs, hubclient.Device{ID: id, PrimaryKey: DeviceKey(keySeed, id), SecondaryKey: DeviceKey(keySeed, id+"/secondary")})
	}
	if err := env.API.PutDevices(ctx, devs, 32, v.registered); err != nil {
		return nil, fmt.Errorf("registering devices: %w", err)
	}
	rep.Registered, rep.RegisterS = len(devs), time.Since(t0).Seconds()
	v.registeredDone(len(devs), time.Since(t0))

	// The observer subscribes itself.
	obs, err := StartObserver(env.WebhookAddr, cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: %w", err)
	}
	defer obs.Close()
	hook := obs.URL()
	if env.WebhookURL != "" {
		hook = env.WebhookURL
	}
	subName := fmt.Sprintf("sim-%s-%d", cfg.Prefix, time.Now().Unix())
	if err := env.API.Subscribe(ctx, hubclient.WebhookSubscription(subName, hook, 0)); err != nil {
		return nil, fmt.Errorf("subscribing the observer: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = env.API.DeleteSubscription(dctx, subName)
	}()

	// The fleet: this process and its workers.
	start := time.Now().Add(200 * time.Millisecond)
	if procs > 1 {
		start = start.Add(2 * time.Second) // workers need a moment to start
	}
	rep.Started = start
	hard, hardCancel := context.WithCancel(context.Background())
	defer hardCancel()
	runCtx := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithDeadline(ctx, start.Add(cfg.Duration))
		defer cancel()
	}
	var parts []*part
	local := newFleet(hard, &cfg, 0, min(cfg.Devices, cfg.PerProcess), keySeed, start, env.API)
	parts = append(parts, &part{fleet: local})
	for p := 1; p < procs; p++ {
		spec := WorkerSpec{Config: cfg, From: p * cfg.PerProcess, To: min(cfg.Devices, (p+1)*cfg.PerProcess),
			KeySeed: keySeed, Start: start, APIBase: env.API.Base, ConnString: env.ConnString}
		w, err := env.Spawn(runCtx, spec)
		if err != nil {
			close(local.stop)
			return nil, fmt.Errorf("starting worker %d: %w", p, err)
		}
		parts = append(parts, newRemotePart(w))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); local.run() }()
	for _, p := range parts[1:] {
		wg.Add(1)
		go func() { defer wg.Done(); p.readRemote() }()
	}
	var drv *driver
	drvDone := make(chan struct{})
	if cfg.MethodRate > 0 || cfg.DesiredRate > 0 {
		// From a second after the ramp, when the fleet is up, to the stop.
		drv = newDriver(env.API, &cfg, offline)
		go func() { drv.run(runCtx, start.Add(local.rampEnd+time.Second)); close(drvDone) }()
	} else {
		close(drvDone)
	}
	crashDone := make(chan struct{})
	if at, ok := cfg.HubCrashAt(); ok {
		rep.HubCrash = &HubCrash{}
		go func() {
			defer close(crashDone)
			select {
			case <-time.After(time.Until(start.Add(at))):
			case <-runCtx.Done():
				rep.HubCrash.Err = "the run ended before the crash was due"
				return
			}
			rep.HubCrash.At = time.Now()
			local.stats.fault(FaultHubCrash)
			if err := env.CrashHub(hard); err != nil {
				rep.HubCrash.Err = err.Error()
			}
			rep.HubCrash.BackS = time.Since(rep.HubCrash.At).Seconds()
			env.Logf("hub-crash: killed the hub at +%s; back after %.1fs", rep.HubCrash.At.Sub(start).Round(time.Millisecond), rep.HubCrash.BackS)
		}()
	} else {
		close(crashDone)
	}
	rollDone := make(chan struct{})
	if f, ok := cfg.Faults.Get(FaultRollingRestart); ok {
		rep.RollingRestart = &RollingRestart{}
		go func() {
			defer close(rollDone)
			rollingRestart(runCtx, hard, start.Add(f.At), crashDone, &cfg, env, local, rep.RollingRestart)
		}()
	} else {
		close(rollDone)
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); <-drvDone; <-crashDone; <-rollDone; close(allDone) }()
	// The run's end waits for the node outages in progress (a rolling
	// restart can outlast the duration on a loaded machine): the devices
	// stop once every node is back, so the outages' ends are all seen.
	outagesDone := make(chan struct{})
	go func() { <-crashDone; <-rollDone; close(outagesDone) }()
	runEnd := runCtx.Done()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	stopping := false
	for done := false; !done; {
		select {
		case <-allDone:
			done = true
		case <-runEnd:
			if ctx.Err() == nil && runEnd != outagesDone {
				select {
				case <-outagesDone:
				default:
					runEnd = outagesDone
					continue
				}
			}
			runEnd = nil
			if !stopping {
				stopping = true
				rep.Interrupted = ctx.Err() != nil
				close(local.stop)
				// A bound on the staggered stop and connects in flight.
				time.AfterFunc(local.rampEnd+60*time.Second, hardCancel)
			}
		case <-tick.C:
			v.progress(start, sumStats(parts), obs, drv)
		}
	}
	rep.Stopped = time.Now()
	var ledger []Expect
	var errs []error
	for _, p := range parts {
		ledger = append(ledger, p.ledger()...)
		if p.err != nil {
			errs = append(errs, p.err)
		}
	}
	rep.Stats = sumStats(parts)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if c := rep.HubCrash; c != nil {
		if c.Err != "" {
			rep.Notes = append(rep.Notes, "hub-crash: "+c.Err)
		} else {
			crashWindow(ledger, c.At, len(cfg.MQTTAddrs) > 1)
		}
	}
	if r := rep.RollingRestart; r != nil && r.Err != "" {
		rep.Notes = append(rep.Notes, "rolling-restart: "+r.Err)
	}
	rep.Storm = stormRecovery(&cfg, start, ledger, rep.Stats.Throttled)
	v.progress(start, rep.Stats, obs, drv)
	if cfg.Twin || cfg.Methods {
		led := &TwinLedger{}
		for _, p := range parts {
			led.Merge(p.twinLedger())
		}
		var calls []CallRecord
		var updates []DesiredRecord
		var skipped int64
		if drv != nil {
			calls, updates = drv.records()
			skipped = drv.skipped.Load()
		}
		rep.Twins = CheckTwins(led, calls, updates, skipped)
	}

	// Wait for the hub's reports, then compare.
	rep.Expected = countEvents(ledger)
	settleStart := time.Now()
	settleCtx, cancel := context.WithTimeout(context.Background(), cfg.Settle)
	defer cancel()
	rep.Settled = waitStable(settleCtx, func() int { return obs.Count() }, rep.Expected, 250*time.Millisecond, v.settling)
	_, slow := cfg.Faults.Get(FaultSlowTLS)
	// Records without a device id are compared when the devices expect
	// some (refusals before the TLS handshake, connect timeouts) or may
	// cause them (slow clients past the hub's connect timeout).
	deviceless := slow && cfg.SlowTLSDelay >= cfg.HubConnectTimeout || slices.ContainsFunc(ledger, func(e Expect) bool { return e.Device < 0 })
	// The log writer may lag the webhooks: it gets its own budget.
	logCtx, logCancel := context.WithTimeout(context.Background(), cfg.Settle)
	defer logCancel()
	logs, n, err := readLogs(logCtx, env.API, cfg.Prefix, start.Add(-time.Second), countLogRecords(ledger), deviceless)
	if err != nil {
		rep.Notes = append(rep.Notes, "reading the Connections log: "+err.Error())
	}
	rep.LogRecords = n
	if !deviceless {
		if n := countDeviceless(logs); n > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("the hub logged %d connection attempts without a device id (timed out or garbled before CONNECT; not compared)", n))
		}
	}
	rep.SettleS = time.Since(settleStart).Seconds()
	events := obs.Events()
	rep.Observed = len(events)
	obs.mu.Lock()
	rep.Foreign = obs.foreign
	obs.mu.Unlock()
	if !deviceless {
		delete(logs, -1)
	}
	rep.Comparison = Compare(ledger, events, logs)
	if len(cfg.Scenarios) > 0 {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		sr, err := CheckScenarios(sctx, env.API, &cfg, start)
		if err != nil {
			rep.Notes = append(rep.Notes, "scenario check: "+err.Error())
		}
		rep.Scenarios = sr
	}
	return rep, nil
}

// crashWindow lets the disconnects a device made just before the hub was
// killed at kill be reported either way: the hub journals a disconnect
// asynchronously, and one it had not stored when it died is recorded at
// the restart like any session left open (500001), or in a cluster by a
// surviving node (404104, node-lost).
func crashWindow(l []Expect, kill time.Time, cluster bool) {
	from := kill.Add(-crashSlack).UnixNano()
	alt := ResultServerError
	if cluster {
		alt = ResultClosedRemotely
	}
	for i := range l {
		e := &l[i]
		if e.Kind == KindDisconnected && e.Cause != CauseHubCrash && e.Alt == "" && e.At >= from && e.At <= kill.UnixNano() {
			e.Alt = alt
		}
	}
}

// rollingRestart restarts the cluster's nodes one after the other from at
// (Env.RestartNode), each stop noted in f's outages as it begins; not
// before a hub-crash fault's node is back (crashDone).
func rollingRestart(runCtx, hard context.Context, at time.Time, crashDone <-chan struct{}, cfg *Config, env Env, f *fleet, r *RollingRestart) {
	select {
	case <-time.After(time.Until(at)):
	case <-runCtx.Done():
		r.Err = "the run ended before the rolling restart was due"
		return
	}
	<-crashDone
	r.At = time.Now()
	f.stats.fault(FaultRollingRestart)
	for i, addr := range cfg.MQTTAddrs {
		t := time.Now()
		f.stopping(addr)
		err := env.RestartNode(hard, i)
		f.restarted(addr)
		if err != nil {
			r.Err = fmt.Sprintf("node %d (%s): %v", i+1, addr, err)
			return
		}
		r.Steps = append(r.Steps, time.Since(t).Seconds())
		env.Logf("rolling-restart: node %d (%s) stopped and back after %.1fs", i+1, addr, time.Since(t).Seconds())
	}
}

// crashSlack is how long before a kill a disconnect may still be unstored
// (the journal publisher's window is milliseconds; this is generous).
const crashSlack = 2 * time.Second

func countEvents(l []Expect) int {
	n := 0
	for _, e := range l {
		if (e.Kind == KindConnected || e.Kind == KindDisconnected) && !e.Maybe {
			n++
		}
	}
	return n
}

func countLogRecords(l []Expect) int {
	n := 0
	for _, e := range l {
		if e.Maybe {
			continue
		}
		n++
		if e.TokenExpiry {
			n++
		}
	}
	return n
}

// waitStable polls count until it reaches want and has not changed for
// 3 s (late duplicates), or ctx ends; it reports whether want was reached.
func waitStable(ctx context.Context, count func() int, want int, every time.Duration, show func(got, want int)) bool {
	last, since := -1, time.Now()
	for {
		n := count()
		if n != last {
			last, since = n, time.Now()
		}
		if show != nil {
			show(n, want)
		}
		if n >= want && time.Since(since) >= 3*time.Second {
			return true
		}
		select {
		case <-ctx.Done():
			return n >= want
		case <-time.After(every):
		}
	}
}

// readLogs reads the run's Connections records (and the deviceless ones,
// under -1) until there are want of them and no more arrive, or ctx ends.
func readLogs(ctx context.Context, api *hubclient.Client, prefix string, since time.Time, want int, deviceless bool) (map[int32][]hubclient.LogRecord, int, error) {
	var out map[int32][]hubclient.LogRecord
	var n int
	var lastErr error
	count := func() int {
		recs, err := api.AllLogs(ctx, "Connections", since)
		if err != nil {
			lastErr = err
			return n
		}
		lastErr = nil
		m := map[int32][]hubclient.LogRecord{}
		c := 0
		for _, r := range recs {
			dev, ok := deviceIndex(prefix+"-", r.DeviceID)
			if !ok {
				if r.DeviceID != "" {
					continue
				}
				dev = -1
			}
			m[dev] = append(m[dev], r)
			c++
		}
		out, n = m, c
		if !deviceless {
			return c - len(m[-1])
		}
		return c
	}
	waitStable(ctx, count, want, 2*time.Second, nil)
	return out, n, lastErr
}

func countDeviceless(logs map[int32][]hubclient.LogRecord) int { return len(logs[-1]) }
