// Command suite is the benchmark suite's driver (bench/run builds it and
// the binaries it starts). In one bounded run it measures, side by side in
// the same run, Tether, bare mochi-mqtt (bench/cmd/baremochi) and
// Mosquitto (with a password file of the same SAS-token passwords):
//
//   - connect storm over plain TCP and TLS 1.2 (bench/cmd/connstorm): connects/s,
//     broker CPU per connect, CONNACK latency, and idle memory per connection;
//   - telemetry throughput: QoS 1 PUBLISH from many connections over TLS,
//     acknowledged messages per second and broker CPU per message;
//   - idle TLS connections (-idle-n, hold.go): many connections from several
//     connstorm -drive processes held with PINGREQs every -keepalive; the
//     broker's CPU over an idle window, RSS per connection, CPU per connect
//     and per disconnect;
//   - the same at scale (-scale-n, e.g. 19,000 in one broker process), with
//     a projection to 1,000,000 devices computed from the measured figures;
//   - a reconnect storm (-storm-n, storm.go): every device reconnecting at
//     once against Tether, throttled and not;
//
// with Tether's previous build (tether-prev, bench/run's BENCH_PREV) as a
// fourth broker when asked, and, for Tether alone (the baselines have no equivalent), event latency
// (bench/cmd/eventlat) and whatever the optional sections in
// bench/suite.d print. It writes one markdown report with every figure and
// its ratio to each baseline.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type options struct {
	bin             map[string]string // tether, tether-prev, baremochi, connstorm, eventlat
	work, out       string
	n, conc         int
	reps            int      // connect storms per broker and transport (medians reported)
	modes           []string // transports of the connect storms: tcp, tls12
	pubConns        int
	pubFor          time.Duration
	pubWindow       int
	timeout         time.Duration
	brokers         []string
	skipEventLat    bool
	storms          bool
	idleN           int           // connections held in the idle test (0: none)
	scaleN          int           // connections held in the scale test (0: none)
	keepAlive       time.Duration // of the held connections (each pings at this period)
	window          time.Duration // the held connections' idle measuring window
	holdTCP         bool          // the idle and scale tests hold plain TCP connections
	perProc         int           // held connections per connstorm process at most
	prevDesc        string        // what tether-prev was built from
	profileDir      string        // CPU profiles of Tether's idle windows go here ("": none)
	stormProfileDir string        // CPU and allocation profiles of Tether's connect storms go here ("": none)
	stormProfileFor time.Duration // each storm's CPU profile length
	stormN          int           // devices of the reconnect storm (0: none; storm.go)
	stormRate       float64       // Tether's --max-connect-rate in the throttled storm
	stormCap        time.Duration // each storm's connect phase at most
	stormModes      []string      // throttled, off
	clientNice      int           // nice value of the storm's client processes (0: as the suite)
	hubCPUs         string        // taskset CPU list the storm's hub is pinned to ("": not pinned)
	clientCPUs      string        // taskset CPU list the storm's client processes are pinned to ("": not pinned)
	stormArgs       []string      // more `tether serve` flags for the throttled storm's hub
}

func main() {
	o := options{bin: map[string]string{}}
	var bins, brokers string
	flag.StringVar(&bins, "bin", "", "built binaries: dir containing tether, baremochi, connstorm, eventlat (and tether-prev to run it)")
	flag.StringVar(&o.work, "work", "", "work dir (brokers' data, logs)")
	flag.StringVar(&o.out, "out", "", "markdown report to write")
	flag.IntVar(&o.n, "n", 5000, "connections per connect storm")
	flag.IntVar(&o.conc, "c", 200, "connects in flight")
	flag.IntVar(&o.reps, "reps", 1, "connect storms per broker and transport, alternated (brokers' order reversed every other repetition); the report gives each figure's median [min–max] and each ratio's median over the repetitions [min–max]")
	flag.IntVar(&o.pubConns, "pub-conns", 500, "publishing connections in the telemetry test")
	flag.DurationVar(&o.pubFor, "pub-for", 10*time.Second, "telemetry test length")
	flag.IntVar(&o.pubWindow, "pub-window", 8, "unacknowledged QoS 1 publishes per connection")
	flag.DurationVar(&o.timeout, "timeout", 8*time.Minute, "hard cap")
	flag.StringVar(&brokers, "brokers", "mosquitto,bare,tether", "brokers to run, in order: mosquitto, bare, tether, tether-prev")
	flag.BoolVar(&o.skipEventLat, "no-eventlat", false, "skip the event-latency section")
	flag.BoolVar(&o.storms, "storms", true, "run the connect storms (TCP, TLS) and the telemetry test")
	flag.IntVar(&o.idleN, "idle-n", 10000, "idle TLS connections each broker holds in the idle test (0: skip)")
	flag.IntVar(&o.scaleN, "scale-n", 0, "TLS connections each broker holds in the scale test, with the 1,000,000-device projection (0: skip)")
	flag.DurationVar(&o.keepAlive, "keepalive", 60*time.Second, "keep-alive of the held connections; each sends a PINGREQ at this period")
	flag.BoolVar(&o.holdTCP, "idle-tcp", false, "the idle (and scale) tests hold plain TCP connections instead of TLS 1.2 (RSS target 8 KiB)")
	flag.DurationVar(&o.window, "idle-window", 20*time.Second, "how long the broker's idle CPU is measured with all connections held")
	flag.StringVar(&o.profileDir, "profile-dir", "", "write a CPU profile of each Tether process over its idle window here (serves pprof; adds a little CPU to that window)")
	flag.StringVar(&o.stormProfileDir, "storm-profile-dir", "", "write a CPU profile of each Tether connect storm (from before the first dial until after the tail) and its allocation profiles before and after it here (adds a little CPU to the storm: not for reported figures)")
	flag.DurationVar(&o.stormProfileFor, "storm-profile-for", 15*time.Second, "length of each storm's CPU profile (connstorm's idle reading, storm, 3 s hold, tail); connstorm holds the connections that long after its measurement")
	flag.StringVar(&o.prevDesc, "prev-desc", "", "what bin/tether-prev was built from (git ref and commit), for the report")
	var stormModes, modes string
	flag.StringVar(&modes, "modes", "tcp,tls12", "transports of the connect storms (the telemetry test runs with tls12)")
	flag.IntVar(&o.stormN, "storm-n", 0, "TLS devices of the reconnect storm against Tether, all reconnecting at once with the Node SDK's back-off (0: skip; storm.go)")
	flag.Float64Var(&o.stormRate, "storm-rate", 300, "Tether's --max-connect-rate (and burst) in the throttled storm")
	flag.DurationVar(&o.stormCap, "storm-cap", 150*time.Second, "each storm's connect phase at most")
	flag.IntVar(&o.clientNice, "storm-client-nice", 19, "run the storm's client processes at this nice value (0: the suite's), so that the clients' CPU, which a real fleet's would not take from the hub's machine, weighs less on the hub")
	flag.StringVar(&o.hubCPUs, "storm-hub-cpus", "", "pin the storm's hub (every thread) to these CPUs (taskset list, e.g. 0): with -storm-client-cpus, hub and clients do not share cores")
	flag.StringVar(&o.clientCPUs, "storm-client-cpus", "", "pin the storm's client processes to these CPUs (taskset list, e.g. 1)")
	flag.Func("storm-hub-arg", "one more `tether serve` flag for the throttled storm's hub, e.g. --connect-queue=10s (repeat for more)", func(v string) error {
		o.stormArgs = append(o.stormArgs, v)
		return nil
	})
	flag.StringVar(&stormModes, "storm-modes", "throttled,off", "storms to run: throttled (at -storm-rate), off (--no-throttle)")
	flag.IntVar(&o.perProc, "per-proc", 4000, "held connections per client process at most (one process per 8 loopback source addresses)")
	flag.Parse()
	log.SetFlags(log.Ltime)
	log.SetPrefix("suite: ")
	for _, b := range []string{"tether", "tether-prev", "baremochi", "connstorm", "eventlat"} {
		o.bin[b] = filepath.Join(bins, b)
	}
	o.brokers = strings.Split(brokers, ",")
	o.stormModes = strings.Split(stormModes, ",")
	o.modes = strings.Split(modes, ",")
	if o.work == "" || o.out == "" || bins == "" {
		log.Fatal("-bin, -work and -out are required (bench/run sets them)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hard := time.AfterFunc(o.timeout+30*time.Second, func() { killAll(); log.Fatal("hard timeout") })
	defer hard.Stop()
	rep, err := run(ctx, o)
	killAll()
	if err != nil {
		log.Fatal(err)
	}
	md := rep.markdown(o)
	if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Print(md)
}
