// Command storm runs the connect-storm benchmark end to end, in one run:
// it builds Tether, bench/cmd/baremochi and bench/cmd/connstorm, generates an
// ECDSA P-256 certificate for bare mochi (Tether uses its own dev CA), starts
// a dev hub once to register the bench devices through the registry REST API,
// then alternates the brokers (a fresh process per run) over plain TCP and
// TLS and writes a markdown report with medians and tether/bare ratios.
//
//	go run ./bench/cmd/storm                      # N=10,000, C=200, tcp+tls12+tls13, 3 repetitions
//	go run ./bench/cmd/storm -brokers bare -n 2000 -reps 1 -out /tmp/x.md
//
// Everything is bounded: each run by connstorm's own caps plus a kill timer,
// the whole by -timeout (runs that no longer fit are skipped and the report
// says so). Children run in their own process groups and are killed on exit.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tether-hub/tether/bench/internal/stormrun"
)

type options struct {
	n         int
	concs     []int
	modes     []string
	brokers   []string
	reps      int
	timeout   time.Duration
	hold      time.Duration
	out       string
	work      string
	keep      bool
	seed      string
	clean     bool
	createPar int
	tetherBin string
	srcFrom   int
	srcTo     int
	perf      bool
	perfTail  bool
	cmdline   string
	// alts are further Tether builds run as brokers of their own (-alt
	// name=path), each with its own data dir: e.g. HEAD against an older
	// commit, side by side in one run.
	alts map[string]string
}

// run is one connstorm run against one fresh broker process.
type run struct {
	Rep      int              `json:"rep"`
	Broker   string           `json:"broker"`
	Mode     string           `json:"mode"`
	C        int              `json:"c"`
	Result   *stormrun.Result `json:"result,omitempty"`
	Err      string           `json:"error,omitempty"`
	Killed   bool             `json:"killed_on_stop,omitempty"` // did not stop within the grace time
	ExitNote string           `json:"exit,omitempty"`           // broker exit status after stop
	WallS    float64          `json:"wall_s"`
	// Profiled runs only (-perf): the perf.data file and its breakdown.
	PerfFile    string      `json:"perf_file,omitempty"`
	PerfSamples int         `json:"perf_samples,omitempty"`
	Perf        []perfShare `json:"perf,omitempty"`
}

func main() {
	var o options
	var concs, modes, brokers string
	flag.IntVar(&o.n, "n", 10000, "devices/connections per run")
	flag.StringVar(&concs, "c", "200", "connects in flight, comma-separated list (e.g. 200,64)")
	flag.StringVar(&modes, "modes", "tcp,tls12,tls13", "transports: tcp, tls12, tls13")
	flag.StringVar(&brokers, "brokers", "bare,tether", "brokers to compare: bare, tether")
	flag.IntVar(&o.reps, "reps", 3, "repetitions of the whole matrix (rep-major, so an early stop still covers every cell)")
	flag.DurationVar(&o.timeout, "timeout", 12*time.Minute, "hard cap on the whole run, builds included")
	flag.DurationVar(&o.hold, "hold", 3*time.Second, "hold all connections idle this long before reading RSS")
	flag.StringVar(&o.out, "out", "", "report path (default bench/results/<date>-connstorm.md; raw runs go next to it as .json)")
	flag.StringVar(&o.work, "work", "", "work dir for binaries, certs, data and logs (default: a new temp dir)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work dir (always kept when a run failed)")
	flag.StringVar(&o.seed, "seed", stormrun.DefaultSeed, "device-key derivation seed")
	flag.BoolVar(&o.clean, "clean", true, "clean-session flag of the CONNECTs")
	flag.IntVar(&o.createPar, "create-par", 16, "parallel registry PUTs when creating devices")
	flag.StringVar(&o.tetherBin, "tether-bin", "", "use this tether binary instead of building ./cmd/tether")
	flag.IntVar(&o.srcFrom, "src-from", 2, "first loopback source address 127.0.0.<src-from>")
	flag.IntVar(&o.srcTo, "src-to", 20, "last loopback source address 127.0.0.<src-to>")
	o.alts = map[string]string{}
	flag.Func("alt", "another tether `name=binary` to run as a broker of its own (repeat; name must start with tether-), e.g. tether-prev=/tmp/tether-old", func(v string) error {
		name, bin, ok := strings.Cut(v, "=")
		if !ok || !strings.HasPrefix(name, "tether-") || bin == "" {
			return fmt.Errorf("want tether-<name>=<binary>, got %q", v)
		}
		o.alts[name] = bin
		return nil
	})
	flag.BoolVar(&o.perfTail, "perf-tail", false, "with -perf, profile until the broker is idle again after the hold (everything the storm caused), not only the connect phase")
	flag.BoolVar(&o.perf, "perf", false, "after the matrix, one extra run per broker and mode under `perf record -g` (connect phase only; not in the tables), a CPU breakdown in the report; keeps the work dir")
	flag.Parse()
	log.SetFlags(log.Ltime)
	log.SetPrefix("storm: ")
	o.cmdline = "go run ./bench/cmd/storm " + strings.Join(os.Args[1:], " ")
	for _, s := range strings.Split(concs, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c <= 0 {
			log.Fatalf("bad -c %q", concs)
		}
		o.concs = append(o.concs, c)
	}
	o.modes = splitList(modes)
	o.brokers = splitList(brokers)
	for _, m := range o.modes {
		if m != "tcp" && m != "tls12" && m != "tls13" {
			log.Fatalf("unknown mode %q", m)
		}
	}
	for name := range o.alts {
		if !slices.Contains(o.brokers, name) {
			o.brokers = append(o.brokers, name)
		}
	}
	for _, b := range o.brokers {
		if b != "bare" && b != "tether" && o.alts[b] == "" {
			log.Fatalf("unknown broker %q (an -alt build must be given for it)", b)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	err := bench(ctx, o)
	stop()
	cancel()
	killAll()
	if err != nil {
		log.Fatal(err)
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func bench(ctx context.Context, o options) error {
	began := time.Now()
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if o.perf {
		if _, err := exec.LookPath("perf"); err != nil {
			return fmt.Errorf("-perf needs the perf tool: %w", err)
		}
	}
	work := o.work
	if work == "" {
		if work, err = os.MkdirTemp("", "connstorm-"); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(work, "logs"), 0o755); err != nil {
		return err
	}
	log.Printf("work dir %s", work)
	failed := false
	if o.perf {
		o.keep = true // the perf.data files are for later reading
	}
	defer func() {
		if !o.keep && !failed && o.work == "" {
			os.RemoveAll(work)
		} else {
			log.Printf("kept %s", work)
		}
	}()

	// Build.
	bins := map[string]string{
		"baremochi": filepath.Join(work, "baremochi"),
		"connstorm": filepath.Join(work, "connstorm"),
	}
	pkgs := map[string]string{"baremochi": "./bench/cmd/baremochi", "connstorm": "./bench/cmd/connstorm"}
	withTether := slices.Contains(o.brokers, "tether")
	if withTether {
		if o.tetherBin != "" {
			bins["tether"] = o.tetherBin
		} else {
			bins["tether"] = filepath.Join(work, "tether")
			pkgs["tether"] = "./cmd/tether"
		}
	}
	for name, pkg := range pkgs {
		log.Printf("go build -o %s %s", bins[name], pkg)
		if err := runTool(ctx, root, "go", "build", "-o", bins[name], pkg); err != nil {
			failed = true
			return fmt.Errorf("building %s: %w", pkg, err)
		}
	}
	// What was built: the tree as of now (the build uses the working tree,
	// uncommitted changes included).
	env := describeEnv(ctx, root)
	for name, bin := range o.alts {
		bins[name] = bin
	}
	// Which Tether builds serve /debug/pprof (--debug-addr; older ones do not).
	debugs := map[string]bool{}
	for _, name := range o.brokers {
		debugs[name] = name != "bare" && tetherHasDebugAddr(ctx, bins[name])
	}
	certFile, keyFile, err := makeCerts(filepath.Join(work, "certs"))
	if err != nil {
		return err
	}

	// Register the devices once per Tether build (each has its own data dir:
	// an older build need not read a newer one's); later runs reuse it.
	hub := "bench.localhost"
	dataDirs := map[string]string{}
	for _, name := range o.brokers {
		if name == "bare" {
			continue
		}
		dataDir := filepath.Join(work, name+"-data")
		dataDirs[name] = dataDir
		log.Printf("starting %s to register %d devices (data dir %s)", name, o.n, dataDir)
		tb, err := startTether(ctx, bins[name], dataDir, filepath.Join(work, "logs", name+"-setup.log"), false)
		if err != nil {
			failed = true
			return err
		}
		api, err := newHubAPI(ctx, dataDir, "https://"+tb.httpsAddr)
		if err == nil {
			if hub != "bench.localhost" && hub != api.CS.HostName {
				err = fmt.Errorf("%s's hub name %s differs from %s's", name, api.CS.HostName, hub)
			} else {
				hub = api.CS.HostName
				log.Printf("hub %s, API %s", hub, api.Base)
				err = api.createDevices(ctx, o.n, o.createPar, o.seed)
			}
		}
		tb.stop(30 * time.Second)
		if err != nil {
			failed = true
			return err
		}
	}

	// The matrix, rep-major; broker order flips every repetition.
	type cell struct {
		rep, c       int
		mode, broker string
	}
	var plan []cell
	for rep := 1; rep <= o.reps; rep++ {
		order := slices.Clone(o.brokers)
		if rep%2 == 0 {
			slices.Reverse(order)
		}
		for _, c := range o.concs {
			for _, m := range o.modes {
				for _, b := range order {
					plan = append(plan, cell{rep, c, m, b})
				}
			}
		}
	}
	const reserve = 20 * time.Second // for stopping and writing the report
	var runs []run
	var longest time.Duration
	skipped := 0
	for i, p := range plan {
		left := o.timeout - time.Since(began)
		if ctx.Err() != nil || left < reserve+longest*3/2 {
			skipped = len(plan) - i
			log.Printf("stopping early: %v left, the longest run took %v; %d runs skipped", left.Round(time.Second), longest.Round(time.Second), skipped)
			break
		}
		log.Printf("run %d/%d: rep %d, %s, C=%d, %s", i+1, len(plan), p.rep, p.mode, p.c, p.broker)
		t0 := time.Now()
		r := oneRun(ctx, o, work, bins, certFile, keyFile, dataDirs[p.broker], hub, p.rep, p.broker, p.mode, p.c, i+1, "", debugs[p.broker])
		r.WallS = time.Since(t0).Seconds()
		longest = max(longest, time.Since(t0))
		if r.Err != "" {
			failed = true
			log.Printf("  run failed: %s", r.Err)
		}
		runs = append(runs, r)
	}

	// Profiled runs, outside the tables (perf sampling costs the broker CPU).
	var profiled []run
	if o.perf {
		seq := len(plan)
		for _, m := range o.modes {
			for _, b := range o.brokers {
				seq++
				if left := o.timeout - time.Since(began); ctx.Err() != nil || left < reserve+longest*2 {
					log.Printf("no time left for the profiled run of %s %s", b, m)
					continue
				}
				log.Printf("profiled run: %s, C=%d, %s", m, o.concs[0], b)
				pf := filepath.Join(work, "logs", fmt.Sprintf("%02d-%s-%s.perf.data", seq, b, m))
				r := oneRun(ctx, o, work, bins, certFile, keyFile, dataDirs[b], hub, 0, b, m, o.concs[0], seq, pf, debugs[b])
				if r.Err == "" {
					r.PerfFile = pf
					r.Perf, r.PerfSamples, err = perfBreakdown(ctx, pf)
					if err != nil {
						r.Err = err.Error()
					}
				}
				if r.Err != "" {
					log.Printf("  profiled run failed: %s", r.Err)
				}
				profiled = append(profiled, r)
			}
		}
	}

	out := o.out
	if out == "" {
		out = filepath.Join(root, "bench", "results", time.Now().Format("2006-01-02")+"-connstorm.md")
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	md := report(o, env, runs, profiled, skipped, time.Since(began))
	if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
		return err
	}
	raw, _ := json.MarshalIndent(map[string]any{"command": o.cmdline, "env": env, "runs": runs, "profiled": profiled}, "", "  ")
	if err := os.WriteFile(strings.TrimSuffix(out, ".md")+".json", raw, 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	log.Printf("wrote %s (%.0fs)", out, time.Since(began).Seconds())
	return nil
}

// oneRun starts a fresh broker, runs connstorm against it and stops it.
func oneRun(ctx context.Context, o options, work string, bins map[string]string, certFile, keyFile, dataDir, hub string,
	rep int, brokerName, mode string, c, seq int, perfFile string, debug bool) run {
	r := run{Rep: rep, Broker: brokerName, Mode: mode, C: c}
	logPath := filepath.Join(work, "logs", fmt.Sprintf("%02d-%s-%s-c%d.log", seq, brokerName, mode, c))
	var b *broker
	var err error
	if brokerName == "bare" {
		b, err = startBare(ctx, bins["baremochi"], certFile, keyFile, logPath)
	} else {
		b, err = startTether(ctx, bins[brokerName], dataDir, logPath, debug)
	}
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer func() {
		if b.exited() {
			r.ExitNote = fmt.Sprintf("broker had exited by itself: %v", b.err)
			if r.Err == "" {
				r.Err = r.ExitNote + " (log: " + logPath + ")"
			}
			return
		}
		r.Killed = b.stop(20 * time.Second)
		if b.err != nil {
			r.ExitNote = b.err.Error()
		}
	}()
	if brokerName != "bare" {
		// A fresh process on the old data dir: check the devices survived.
		api, err := newHubAPI(ctx, dataDir, "https://"+b.httpsAddr)
		if err != nil {
			r.Err = err.Error()
			return r
		}
		api.Base = "https://" + b.httpsAddr
		for _, i := range []int{0, o.n - 1} {
			ok, err := api.deviceExists(ctx, stormrun.DeviceID(i))
			if err != nil || !ok {
				r.Err = fmt.Sprintf("device %s not in the registry after restart (err %v)", stormrun.DeviceID(i), err)
				return r
			}
		}
	}
	addr := b.tcpAddr
	if mode != "tcp" {
		addr = b.tlsAddr
	}
	resFile := filepath.Join(work, "logs", fmt.Sprintf("%02d-%s-%s-c%d.json", seq, brokerName, mode, c))
	args := []string{
		"-broker", brokerName, "-addr", addr, "-mode", mode, "-n", strconv.Itoa(o.n), "-c", strconv.Itoa(c),
		"-pid", strconv.Itoa(b.pid()), "-hub", hub, "-seed", o.seed, "-clean=" + strconv.FormatBool(o.clean),
		"-hold", o.hold.String(), "-src-from", strconv.Itoa(o.srcFrom), "-src-to", strconv.Itoa(o.srcTo), "-out", resFile,
	}
	if brokerName == "bare" {
		args = append(args, "-gc-signal") // only baremochi handles SIGUSR1
	}
	if perfFile != "" {
		args = append(args, "-perf", perfFile)
		if o.perfTail {
			args = append(args, "-perf-tail")
		}
	}
	if b.debugAddr != "" {
		args = append(args, "-pprof", "http://"+b.debugAddr)
	}
	// connstorm caps itself (quiet 30 s + connect 120 s + hold + drain 30 s);
	// the kill timer is a backstop.
	cctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, bins["connstorm"], args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		r.Err = fmt.Sprintf("connstorm: %v", err)
		return r
	}
	data, err := os.ReadFile(resFile)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	r.Result = new(stormrun.Result)
	if err := json.Unmarshal(data, r.Result); err != nil {
		r.Err = err.Error()
	}
	return r
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/tether-hub/tether\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run inside the tether repository (no go.mod of github.com/tether-hub/tether above %s)", dir)
		}
		dir = parent
	}
}
