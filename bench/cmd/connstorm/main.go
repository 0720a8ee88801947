// Command connstorm is the load client of the connect-storm benchmark. It opens
// N MQTT 3.1.1 connections (plain TCP, TLS 1.2 or TLS 1.3) to one broker with
// at most C connects in flight, source addresses spread over 127.0.0.2…, and
// measures: connects/s, CONNACK latency, failures by kind, the broker's CPU
// per connect (utime+stime from /proc/<pid>/stat, read just before the first
// dial and right after the last CONNACK; and again once the broker is back
// at its idle rate, for everything the connects caused, less that rate),
// and its RSS per idle connection (VmRSS before the storm and after holding
// all connections idle). It then
// closes everything and waits, bounded, for the broker to drain. Every phase
// is capped in time, so a run always ends by itself. The result is one JSON
// record (bench/internal/stormrun.Result) on stdout or in -out.
//
// Each connection is device bench-<i>: client id bench-<i>, username
// "<hub>/bench-<i>/?api-version=2021-04-12", password a SAS token signed with
// the device's derived key (stormrun.DeviceKeys). Bare mochi ignores both.
//
// With -drive it only connects, holds (keeping alive with PINGREQs) and
// closes, on a driver's commands, so that several processes can share one
// large run while the driver reads the broker (drive.go; bench/cmd/suite's
// hold test).
package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tether-hub/tether/bench/internal/gostats"
	"github.com/tether-hub/tether/bench/internal/procstat"
	"github.com/tether-hub/tether/bench/internal/stormrun"
	"github.com/tether-hub/tether/internal/mqttclient"
)

type config struct {
	broker, addr, mode, hub, seed, out string
	perfOut, pprofURL                  string
	perfTail                           bool
	n, conc, srcFrom, srcTo, first     int
	pid                                int
	expiry                             int64
	clean, gcSignal, drive, retry      bool
	hold, dialTimeout, phaseCap        time.Duration
	linger                             time.Duration
	keepAlive, holdMax                 time.Duration
	drainTimeout, quietTimeout         time.Duration
	idleBase, settleWindow             time.Duration
	settleMargin                       float64
}

func main() {
	var c config
	flag.StringVar(&c.broker, "broker", "", "label of the broker under test, copied into the result")
	flag.StringVar(&c.addr, "addr", "127.0.0.1:11883", "broker address host:port")
	flag.StringVar(&c.mode, "mode", "tcp", "tcp, tls12 (ECDHE-ECDSA-AES128-GCM-SHA256, P-256) or tls13 (X25519 only)")
	flag.IntVar(&c.n, "n", 10000, "connections to open and hold")
	flag.IntVar(&c.conc, "c", 200, "connects in flight at most")
	flag.IntVar(&c.pid, "pid", 0, "broker process id, for CPU/RSS/fd readings (required)")
	flag.StringVar(&c.hub, "hub", "bench", "hub host name used in usernames and SAS resources")
	flag.Int64Var(&c.expiry, "expiry", 0, "se of the SAS tokens, Unix seconds (default now + 24 h); fixed, the passwords are known in advance (a broker's password file)")
	flag.StringVar(&c.seed, "seed", stormrun.DefaultSeed, "device-key derivation seed")
	flag.IntVar(&c.srcFrom, "src-from", 2, "first source address 127.0.0.<src-from>")
	flag.IntVar(&c.srcTo, "src-to", 20, "last source address 127.0.0.<src-to>")
	flag.BoolVar(&c.clean, "clean", true, "clean session flag in CONNECT")
	flag.IntVar(&c.first, "first", 0, "first device index: connections are bench-<first>…bench-<first+n-1>")
	flag.DurationVar(&c.keepAlive, "keepalive", 600*time.Second, "keep-alive in CONNECT (whole seconds); in -drive mode every connection also sends PINGREQ at this period")
	flag.BoolVar(&c.retry, "retry", false, "retry a failed connect as the Azure IoT Node SDK does (immediate, then exponential back-off with jitter up to 10 s) until -phase-cap: a reconnect storm (retry.go)")
	flag.BoolVar(&c.drive, "drive", false, "driven mode: hold the connections for a driver that reads the broker itself; commands on stdin (connect, stats, close), JSON events on stdout (see drive.go)")
	flag.DurationVar(&c.holdMax, "hold-max", 5*time.Minute, "-drive: close everything and exit after this long, whatever the driver says")
	flag.DurationVar(&c.linger, "linger", 0, "after the measurement, keep every connection open this long before closing them (a profile of the storm then ends before the disconnects)")
	flag.DurationVar(&c.hold, "hold", 3*time.Second, "hold all connections idle this long before reading RSS")
	flag.DurationVar(&c.dialTimeout, "conn-timeout", 30*time.Second, "per-connection cap, dial start → CONNACK")
	flag.DurationVar(&c.phaseCap, "phase-cap", 120*time.Second, "connect phase cap; connects not started by then are skipped")
	flag.DurationVar(&c.drainTimeout, "drain-timeout", 30*time.Second, "wait at most this long for the broker to drop the closed connections")
	flag.DurationVar(&c.quietTimeout, "quiet-timeout", 30*time.Second, "wait at most this long for the broker to go idle, before the storm and again after it")
	flag.DurationVar(&c.idleBase, "idle-base", 2*time.Second, "once the broker is idle before the storm, read its idle CPU over this long: the base subtracted from the CPU until idle (0: none)")
	flag.DurationVar(&c.settleWindow, "settle-window", 2*time.Second, "after the storm and the hold, the broker counts as idle again once it stayed within -settle-margin of its idle base for this long")
	flag.Float64Var(&c.settleMargin, "settle-margin", 0.01, "share of a core above the idle base that still counts as idle after the storm")
	flag.BoolVar(&c.gcSignal, "gc-signal", false, "after all other readings, send the broker SIGUSR1 (bare mochi: GC) and read RSS again")
	flag.StringVar(&c.out, "out", "", "write the JSON result here (default stdout)")
	flag.StringVar(&c.pprofURL, "pprof", "", "base URL of the broker's /debug/pprof (e.g. http://127.0.0.1:6060): goroutines and heap/stack in use are read before the storm and while held")
	flag.BoolVar(&c.perfTail, "perf-tail", false, "with -perf, stop the profile once the broker is idle again after the hold (the storm and everything it caused), not at the last CONNACK")
	flag.StringVar(&c.perfOut, "perf", "", "profile the broker with `perf record -g` over the connect phase into this file (adds overhead: use for separate runs)")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("connstorm: ")

	if c.pid <= 0 && !c.drive {
		log.Fatal("-pid is required")
	}
	if c.n <= 0 || c.conc <= 0 || c.first < 0 || c.srcFrom < 1 || c.srcTo < c.srcFrom || c.srcTo > 254 {
		log.Fatal("bad -n, -c, -first or source range")
	}
	if c.keepAlive < time.Second || c.keepAlive > 65535*time.Second {
		log.Fatal("-keepalive must be 1s…65535s")
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && uint64(c.n)+64 > lim.Cur {
		log.Fatalf("-n %d needs more open files than this process may hold (%d)", c.n, lim.Cur)
	}

	if c.drive {
		if err := drive(c); err != nil {
			log.Fatal(err)
		}
		return
	}
	res, err := run(c)
	if err != nil {
		log.Fatal(err)
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	b = append(b, '\n')
	if c.out == "" {
		os.Stdout.Write(b)
	} else if err := os.WriteFile(c.out, b, 0o644); err != nil {
		log.Fatal(err)
	}
}

func tlsConfig(mode string) (*tls.Config, error) {
	switch mode {
	case "tcp":
		return nil, nil
	case "tls12":
		return &tls.Config{
			InsecureSkipVerify: true, // saves client CPU; the handshake signature is still checked
			MinVersion:         tls.VersionTLS12,
			MaxVersion:         tls.VersionTLS12,
			CipherSuites:       []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
			CurvePreferences:   []tls.CurveID{tls.CurveP256},
		}, nil
	case "tls13":
		return &tls.Config{
			InsecureSkipVerify: true,
			MinVersion:         tls.VersionTLS13,
			CurvePreferences:   []tls.CurveID{tls.X25519}, // no hybrid post-quantum share
		}, nil
	}
	return nil, fmt.Errorf("unknown -mode %q", mode)
}

func run(c config) (*stormrun.Result, error) {
	res := &stormrun.Result{
		Broker: c.broker, Mode: c.mode, Addr: c.addr, N: c.n, Concurrency: c.conc,
		CleanSession: c.clean, Sources: c.srcTo - c.srcFrom + 1,
	}

	p, err := makePlan(c)
	if err != nil {
		return nil, err
	}

	var perf *exec.Cmd
	if c.perfOut != "" {
		// Attached before the quiet wait (≥ 1 s), stopped after the last
		// CONNACK: an idle broker gives no samples, so the profile is the
		// connect phase.
		perf = exec.Command("perf", "record", "-q", "-F", "997", "-g", "-p", strconv.Itoa(c.pid), "-o", c.perfOut)
		perf.Stdout, perf.Stderr = os.Stderr, os.Stderr
		perf.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := perf.Start(); err != nil {
			return nil, fmt.Errorf("perf: %w", err)
		}
	}
	wait, quiet := procstat.WaitQuiet(c.pid, 250*time.Millisecond, 4, 0.05, c.quietTimeout)
	res.QuietWaitS, res.Quiet = wait.Seconds(), quiet
	if !quiet {
		log.Printf("broker pid %d did not go idle within %v; measuring anyway", c.pid, c.quietTimeout)
	}

	if c.idleBase > 0 {
		if res.IdleBaseCores, err = procstat.IdleRate(c.pid, c.idleBase); err != nil {
			return nil, fmt.Errorf("broker pid %d: %w", c.pid, err)
		}
	}

	var goBefore gostats.Stats
	if c.pprofURL != "" {
		if goBefore, err = gostats.Fetch(c.pprofURL); err != nil {
			return nil, fmt.Errorf("broker pprof: %w", err)
		}
	}
	rssBefore, err := procstat.RSSKiB(c.pid)
	if err != nil {
		return nil, fmt.Errorf("broker pid %d: %w", c.pid, err)
	}
	fdsBefore, _ := procstat.FDs(c.pid)
	socketsBefore, _ := socketFDs(c.pid)
	ovBefore, _ := procstat.ListenOverflows()
	var ruBefore syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ruBefore)
	sysBefore, _ := procstat.SystemBusy()
	cpuBefore, err := procstat.CPU(c.pid)
	if err != nil {
		return nil, err
	}
	tBefore := time.Now()
	outs, elapsed := connectAll(c, p, res)
	cpuAfter, _ := procstat.CPU(c.pid)
	var ruAfter syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ruAfter)
	sysAfter, _ := procstat.SystemBusy()
	ovAfter, _ := procstat.ListenOverflows()
	if perf != nil && !c.perfTail {
		stopPerf(perf)
	}

	conns := tally(res, outs, elapsed)
	res.ListenOverflow = ovAfter - ovBefore
	serverCPU := time.Duration(cpuAfter-cpuBefore) * procstat.TickDuration
	clientCPU := cpuTime(ruAfter) - cpuTime(ruBefore)
	res.ServerCPUms = ms(serverCPU)
	res.BusyCores = (time.Duration(sysAfter-sysBefore) * procstat.TickDuration).Seconds() / elapsed.Seconds()
	res.OtherCores = max(0, (time.Duration(sysAfter-sysBefore)*procstat.TickDuration-serverCPU-clientCPU).Seconds()/elapsed.Seconds())
	if res.Connected > 0 {
		res.ServerCPUusPerConn = res.ServerCPUms * 1000 / float64(res.Connected)
		res.ClientCPUusPerConn = float64(clientCPU.Microseconds()) / float64(res.Connected)
	}
	log.Printf("%s %s: %d connected, %d failed, %d not tried in %.2fs (%.0f/s), server CPU %.0f µs/connect, %.2f cores busy (%.2f other)",
		c.broker, c.mode, res.Connected, res.Failed, res.NotTried, elapsed.Seconds(), res.ConnectsPerS, res.ServerCPUusPerConn, res.BusyCores, res.OtherCores)
	for k, v := range res.Failures {
		log.Printf("  failure %q ×%d, e.g. %s", k, v, res.FailSample[k])
	}

	// Hold everything idle, then read memory and descriptors.
	time.Sleep(c.hold)
	res.HoldS = c.hold.Seconds()
	cpuHeld, _ := procstat.CPU(c.pid)
	res.HoldCPUms = ms(time.Duration(cpuHeld-cpuAfter) * procstat.TickDuration)
	res.RSSBeforeKiB = rssBefore
	res.RSSHeldKiB, _ = procstat.RSSKiB(c.pid)
	res.FDsBefore = fdsBefore
	res.FDsHeld, _ = procstat.FDs(c.pid)
	if res.Connected > 0 {
		res.RSSKiBPerConn = float64(res.RSSHeldKiB-rssBefore) / float64(res.Connected)
	}
	// Asynchronous work the connects left behind (journal stores, log
	// flushes, consumers catching up, GC, returning memory): wait, bounded,
	// until the broker is back at its idle rate for settleWindow and count
	// its CPU. The window's last settleWindow is counted too: what the
	// broker burned there above its idle base is at most settleMargin.
	settle, quiet := procstat.WaitQuiet(c.pid, c.settleWindow/4, 4, res.IdleBaseCores+c.settleMargin, c.quietTimeout)
	cpuSettled, _ := procstat.CPU(c.pid)
	res.SettleS, res.Settled = (c.hold + settle).Seconds(), quiet
	res.SettleCPUms = ms(time.Duration(cpuSettled-cpuAfter) * procstat.TickDuration)
	span := time.Since(tBefore)
	res.UntilIdleS = span.Seconds()
	if res.Connected > 0 {
		caused := time.Duration(cpuSettled-cpuBefore)*procstat.TickDuration - time.Duration(res.IdleBaseCores*float64(span))
		res.ServerCPUUntilIdleUsPerConn = float64(caused.Microseconds()) / float64(res.Connected)
	}
	if perf != nil && c.perfTail {
		stopPerf(perf)
	}
	res.RSSSettledKiB, _ = procstat.RSSKiB(c.pid)
	if c.pprofURL != "" {
		if held, err := gostats.Fetch(c.pprofURL); err != nil {
			log.Printf("broker pprof: %v", err)
		} else {
			res.GoroutinesBefore, res.GoroutinesHeld = goBefore.Goroutines, held.Goroutines
			res.HeapInuseBeforeKiB, res.HeapInuseHeldKiB = goBefore.HeapInuse>>10, held.HeapInuse>>10
			res.StackInuseBeforeKiB, res.StackInuseHeldKiB = goBefore.StackInuse>>10, held.StackInuse>>10
		}
	}
	if c.gcSignal {
		if err := syscall.Kill(c.pid, syscall.SIGUSR1); err == nil {
			time.Sleep(time.Second)
			res.RSSGCKiB, _ = procstat.RSSKiB(c.pid)
			if res.Connected > 0 {
				res.RSSGCKiBPerConn = float64(res.RSSGCKiB-rssBefore) / float64(res.Connected)
			}
		}
	}
	log.Printf("held %d for %v: RSS %d → %d KiB (%.1f KiB/conn), fds %d → %d; idle again %.1fs after the storm (%v), %.0f ms CPU since the last CONNACK; until idle %.0f µs/connect (idle base %.2f %% of a core)",
		res.Connected, c.hold, rssBefore, res.RSSHeldKiB, res.RSSKiBPerConn, fdsBefore, res.FDsHeld, res.SettleS, quiet, res.SettleCPUms,
		res.ServerCPUUntilIdleUsPerConn, 100*res.IdleBaseCores)

	time.Sleep(c.linger)
	// Close everything; wait for the broker to let go of the sockets.
	cpuClose, _ := procstat.CPU(c.pid)
	tClose := time.Now()
	for _, cn := range conns {
		cn.Close()
	}
	res.CloseS = time.Since(tClose).Seconds()
	for {
		n, err := procstat.FDs(c.pid)
		res.FDsAfter = n
		if err != nil {
			break
		}
		// Sockets, not all descriptors: a broker may open files while the
		// storm runs (Tether's journal and log store do) and keep them.
		if k, err := socketFDs(c.pid); err == nil && k <= socketsBefore+2 {
			res.Drained = true
			break
		}
		if time.Since(tClose) > c.drainTimeout {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	res.DrainS = time.Since(tClose).Seconds()
	if cpuDrained, err := procstat.CPU(c.pid); err == nil {
		res.DrainCPUms = ms(time.Duration(cpuDrained-cpuClose) * procstat.TickDuration)
		res.ServerAlive = true
	}
	log.Printf("closed all in %.2fs: drained=%v in %.2fs (fds %d), broker alive=%v", res.CloseS, res.Drained, res.DrainS, res.FDsAfter, res.ServerAlive)
	return res, nil
}

// failureKind buckets an error for the failure table.
var failureKind = mqttclient.FailureKind

func describeTLS(res *stormrun.Result, tc *tls.Conn) {
	st := tc.ConnectionState()
	res.TLSVersion = tls.VersionName(st.Version)
	res.TLSCipher = tls.CipherSuiteName(st.CipherSuite)
	res.TLSCurve = st.CurveID.String()
	if len(st.PeerCertificates) > 0 {
		switch k := st.PeerCertificates[0].PublicKey.(type) {
		case *ecdsa.PublicKey:
			res.TLSCertKey = "ECDSA " + k.Curve.Params().Name
		case *rsa.PublicKey:
			res.TLSCertKey = fmt.Sprintf("RSA %d", k.N.BitLen())
		case ed25519.PublicKey:
			res.TLSCertKey = "Ed25519"
		default:
			res.TLSCertKey = fmt.Sprintf("%T", k)
		}
	}
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(i, len(sorted))-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func cpuTime(ru syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// stopPerf ends a perf record and waits (bounded) for it to write its file.
func stopPerf(perf *exec.Cmd) {
	_ = perf.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- perf.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = perf.Process.Kill()
		<-done
	}
}

// socketFDs counts the sockets among pid's open descriptors.
func socketFDs(pid int) (int, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	names, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range names {
		if l, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n, nil
}
