package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tether-hub/tether/bench/internal/gostats"
	"github.com/tether-hub/tether/bench/internal/procstat"
	"github.com/tether-hub/tether/bench/internal/stormrun"
)

// holdResult is one broker holding n idle TLS 1.2 connections, opened by
// several connstorm -drive processes that keep them alive with PINGREQs.
// Every broker figure is read here from /proc/<broker pid>.
type holdResult struct {
	N, Procs  int
	KeepAlive time.Duration
	Window    time.Duration

	Connected, Failed int
	ConnectS          float64 // first dial (of any process) → last CONNACK (of all)
	ConnectsPerS      float64
	LatP99ms          float64 // the worst process's CONNACK p99
	// Broker CPU from the first dial to the last CONNACK, per connect; and
	// with the work connects leave behind (events, logs, GC): until the
	// broker was idle again, less the idle CPU (IdleCores) over that
	// settling time, per connect.
	CPUusPerConnect, CPUusPerConnectAll float64
	Settled                             bool

	// VmRSS after the broker was up and idle, before any connect; and
	// after all were held through the idle window.
	RSSBaseKiB, RSSHeldKiB int64
	RSSKiBPerConn          float64
	FDsHeld                int
	// A Go broker's own account of that memory (Tether: its /debug/pprof),
	// read at the same two moments without forcing a GC: heap in use (live
	// objects and garbage not yet collected), goroutine stacks, and the
	// heap goal (the heap size at which the next GC ends).
	GoBase, GoHeld *gostats.Stats

	BaseCores  float64 // broker CPU with no connection, over half the window, before the connects
	IdleCores  float64 // broker CPU over the window ÷ the window (1 = one core)
	PingsPerS  float64 // PINGREQs the clients sent during the window, per second
	PongsPerS  float64 // PINGRESPs the clients read during the window, per second
	OtherCores float64 // busy cores during the window that were neither the broker nor the clients
	Lost       int64   // connections lost before the close

	// Broker CPU from the close command (DISCONNECT from every connection)
	// until its sockets were gone and it was idle again, less the idle CPU
	// with no connection (BaseCores) over that time, per connection.
	CPUusPerDisconnect float64
	Drained            bool
	ClosedByBroker     int64
}

// holdRun starts a fresh broker name, has it hold n connections and stops it.
func (s *setup) holdRun(ctx context.Context, name string, n int) (*holdResult, error) {
	b, err := s.start(ctx, name, filepath.Join(s.logs, fmt.Sprintf("%s-hold%d.log", name, n)))
	if err != nil {
		return nil, err
	}
	defer b.stop()
	log.Printf("hold: %s, %d %s connections, keep-alive %v, idle window %v", name, n, s.o.holdKind(), s.o.keepAlive, s.o.window)
	return s.hold(ctx, b, n)
}

// holdKind names the held connections' transport.
func (o options) holdKind() string {
	if o.holdTCP {
		return "plain TCP"
	}
	return "TLS"
}

// driven is one connstorm -drive process.
type driven struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	events chan stormrun.DriveEvent // closed when its stdout ends
}

// startDriven runs connstorm -drive for devices first…first+n-1 from
// source addresses 127.0.0.<2+8p>…<9+8p>, conc connects in flight, at
// nice value nice (0: the suite's), and waits for nothing. extra flags
// come last (a later flag wins).
func (s *setup) startDriven(b *broker, p, first, n, conc, nice int, extra ...string) (*driven, error) {
	src := 2 + 8*p
	args := append([]string{"-drive", "-broker", b.name, "-addr", b.tls, "-mode", "tls12",
		"-n", strconv.Itoa(n), "-first", strconv.Itoa(first), "-c", strconv.Itoa(conc),
		"-src-from", strconv.Itoa(src), "-src-to", strconv.Itoa(src + 7), "-hub", hubName,
		"-expiry", strconv.FormatInt(s.expiry, 10), "-keepalive", s.o.keepAlive.String(),
		"-phase-cap", "120s", "-hold-max", (s.o.window + 5*time.Minute).String()}, extra...)
	cmd := exec.Command(s.o.bin["connstorm"], args...)
	if nice > 0 {
		// The clients' CPU would not be the hub's machine's in a real
		// fleet: at a lower priority it weighs less on the hub's figures.
		cmd = exec.Command("nice", append([]string{"-n", strconv.Itoa(nice), s.o.bin["connstorm"]}, args...)...)
	}
	lf, err := os.Create(filepath.Join(s.logs, fmt.Sprintf("connstorm-%s-%d-%d.log", b.name, first+n, p)))
	if err != nil {
		return nil, err
	}
	cmd.Stderr = lf
	d := &driven{cmd: cmd, events: make(chan stormrun.DriveEvent, 4)}
	if d.in, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	// Not StdoutPipe: Wait (in startTracked) would close it while the last
	// event may still be unread.
	out, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = pw
	_, err = startTracked(cmd, lf)
	pw.Close()
	if err != nil {
		out.Close()
		return nil, err
	}
	go func() {
		defer close(d.events)
		defer out.Close()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e stormrun.DriveEvent
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				d.events <- e
			}
		}
	}()
	return d, nil
}

// ask sends cmd ("" = none) to every process and waits, up to timeout, for
// event from each.
func ask(ctx context.Context, ds []*driven, cmd, event string, timeout time.Duration) ([]stormrun.DriveEvent, error) {
	if cmd != "" {
		for _, d := range ds {
			if _, err := io.WriteString(d.in, cmd+"\n"); err != nil {
				return nil, fmt.Errorf("connstorm %d: %s: %w", d.cmd.Process.Pid, cmd, err)
			}
		}
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	var evs []stormrun.DriveEvent
	for _, d := range ds {
		select {
		case e, ok := <-d.events:
			if !ok {
				return nil, fmt.Errorf("connstorm %d exited before %q (its log is in the suite's logs)", d.cmd.Process.Pid, event)
			}
			if e.Event != event {
				return nil, fmt.Errorf("connstorm %d: %q instead of %q", d.cmd.Process.Pid, e.Event, event)
			}
			evs = append(evs, e)
		case <-t.C:
			return nil, fmt.Errorf("no %q from every connstorm within %v", event, timeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return evs, nil
}

// hold opens n TLS 1.2 connections to b from ⌈n/perProc⌉ connstorm -drive
// processes at once (o.conc in flight in all), holds them idle, each
// sending a PINGREQ every o.keepAlive, and measures the broker: CPU per
// connect, RSS per connection (held through the window, against the
// baseline taken once it was up and idle), its CPU over the idle window,
// and the CPU per disconnect when every connection sends DISCONNECT.
func (s *setup) hold(ctx context.Context, b *broker, n int) (*holdResult, error) {
	o := s.o
	k := (n + o.perProc - 1) / o.perProc
	r := &holdResult{N: n, Procs: k, KeepAlive: o.keepAlive, Window: o.window}
	var ds []*driven
	defer func() {
		for _, d := range ds {
			_ = d.in.Close() // connstorm closes its connections and exits
			stopCmd(d.cmd)
		}
	}()
	for p := range k {
		first, last := p*n/k, (p+1)*n/k
		var extra []string
		if o.holdTCP {
			extra = []string{"-addr", b.tcp, "-mode", "tcp"}
		}
		d, err := s.startDriven(b, p, first, last-first, (o.conc+k-1)/k, 0, extra...)
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	if _, err := ask(ctx, ds, "", "ready", 60*time.Second); err != nil {
		return nil, err
	}

	// Baseline: the broker up and idle, before any connect.
	if _, quiet := procstat.WaitQuiet(b.pid, 250*time.Millisecond, 4, 0.05, 15*time.Second); !quiet {
		log.Printf("hold: %s did not go idle within 15 s; baseline taken anyway", b.name)
	}
	base, err := idleCPU(ctx, b.pid, o.window/2)
	if err != nil {
		return nil, err
	}
	r.BaseCores = base
	r.RSSBaseKiB, _ = procstat.RSSKiB(b.pid)
	r.GoBase = goStats(b)
	fds0, _ := procstat.FDs(b.pid)
	cpu0, _ := procstat.CPU(b.pid)
	t0 := time.Now()
	evs, err := ask(ctx, ds, "connect", "connected", 150*time.Second)
	if err != nil {
		return nil, err
	}
	cpu1, _ := procstat.CPU(b.pid)
	r.ConnectS = time.Since(t0).Seconds()
	for _, e := range evs {
		r.Connected += e.Result.Connected
		r.Failed += e.Result.Failed + e.Result.NotTried
		r.LatP99ms = max(r.LatP99ms, e.Result.LatP99ms)
		for kind, c := range e.Result.Failures {
			log.Printf("hold: %s: %d × %s, e.g. %s", b.name, c, kind, e.Result.FailSample[kind])
		}
	}
	if r.Connected == 0 {
		return nil, fmt.Errorf("no connection succeeded")
	}
	r.ConnectsPerS = float64(r.Connected) / r.ConnectS
	perConn := func(ticks int64) float64 {
		return float64((time.Duration(ticks) * procstat.TickDuration).Microseconds()) / float64(r.Connected)
	}
	r.CPUusPerConnect = perConn(cpu1 - cpu0)
	settle, settled := procstat.WaitQuiet(b.pid, 250*time.Millisecond, 4, 0.05, 10*time.Second)
	settle += waitGCs(b)
	cpu2, _ := procstat.CPU(b.pid)
	r.Settled = settled
	log.Printf("hold: %s: %d connected, %d failed in %.1fs; %.0f µs CPU per connect",
		b.name, r.Connected, r.Failed, r.ConnectS, r.CPUusPerConnect)

	// The idle window: only PINGREQs.
	st0, err := ask(ctx, ds, "stats", "stats", 10*time.Second)
	if err != nil {
		return nil, err
	}
	sysA, _ := procstat.SystemBusy()
	cliA := clientsCPU(ds)
	tA := time.Now()
	profiled := s.profileIdle(b, n, o.window)
	if r.IdleCores, err = idleCPU(ctx, b.pid, o.window); err != nil {
		return nil, err
	}
	profiled()
	w := time.Since(tA)
	cliB := clientsCPU(ds)
	sysB, _ := procstat.SystemBusy()
	st1, err := ask(ctx, ds, "stats", "stats", 10*time.Second)
	if err != nil {
		return nil, err
	}
	busy := (time.Duration(sysB-sysA-cliB+cliA) * procstat.TickDuration).Seconds() / w.Seconds()
	r.OtherCores = max(0, busy-r.IdleCores)
	var pings, pongs int64
	for i := range st1 {
		pings += st1[i].Pings - st0[i].Pings
		pongs += st1[i].Pongs - st0[i].Pongs
		r.Lost += st1[i].Lost
	}
	r.PingsPerS, r.PongsPerS = float64(pings)/w.Seconds(), float64(pongs)/w.Seconds()
	// The settling time after the connects, less what the connections
	// cost anyway when idle.
	r.CPUusPerConnectAll = perConn(cpu2-cpu0) - r.IdleCores*float64(settle.Microseconds())/float64(r.Connected)
	r.RSSHeldKiB, _ = procstat.RSSKiB(b.pid)
	r.GoHeld = goStats(b)
	r.FDsHeld, _ = procstat.FDs(b.pid)
	r.RSSKiBPerConn = float64(r.RSSHeldKiB-r.RSSBaseKiB) / float64(r.Connected)
	if r.GoBase != nil && r.GoHeld != nil {
		log.Printf("hold: %s Go memory before → held: heap in use %d → %d MiB, stacks %d → %d MiB, heap goal %d → %d MiB",
			b.name, r.GoBase.HeapInuse>>20, r.GoHeld.HeapInuse>>20, r.GoBase.StackInuse>>20, r.GoHeld.StackInuse>>20,
			r.GoBase.NextGC>>20, r.GoHeld.NextGC>>20)
	}
	log.Printf("hold: %s idle %v: %.2f %% of a core (%.2f %% with none), %.0f PINGREQ/s, %.0f PINGRESP/s, %d lost; %.0f µs CPU per connect with what it left behind (settled %v in %v); RSS %d → %d KiB (%.1f KiB per connection)",
		b.name, w.Round(time.Millisecond), 100*r.IdleCores, 100*r.BaseCores, r.PingsPerS, r.PongsPerS, r.Lost,
		r.CPUusPerConnectAll, settled, settle.Round(time.Millisecond), r.RSSBaseKiB, r.RSSHeldKiB, r.RSSKiBPerConn)

	// Every connection disconnects (DISCONNECT, then the broker closes).
	cpuC, _ := procstat.CPU(b.pid)
	tC := time.Now()
	evs, err = ask(ctx, ds, "close", "closed", 60*time.Second)
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		r.ClosedByBroker += e.ClosedByBroker
	}
	for time.Since(tC) < 30*time.Second {
		if f, err := procstat.FDs(b.pid); err != nil || f <= fds0+2 {
			r.Drained = err == nil
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	procstat.WaitQuiet(b.pid, 250*time.Millisecond, 4, 0.05, 20*time.Second)
	cpuD, _ := procstat.CPU(b.pid)
	r.CPUusPerDisconnect = perConn(cpuD-cpuC) - r.BaseCores*float64(time.Since(tC).Microseconds())/float64(r.Connected)
	log.Printf("hold: %s: %d closed by the broker after DISCONNECT (of %d), drained=%v; %.0f µs CPU per disconnect",
		b.name, r.ClosedByBroker, r.Connected, r.Drained, r.CPUusPerDisconnect)
	return r, nil
}

// waitGCs waits, for a broker that serves its Go statistics, until it has
// run no GC for gcQuiet (gcWaitMax at most), and returns how long it
// waited. Tether compacts its memory after a connect burst and again once
// its pipeline has settled (internal/app/compact.go): forced collections
// that scan every connection's stack, one-offs after a burst that would
// otherwise fall in the idle window (a few hundred ms of CPU each).
func waitGCs(b *broker) time.Duration {
	// Polled once a second, reading only MemStats (FetchMem), so that the
	// poll itself allocates little: Tether waits for < 1 MiB/s.
	const gcQuiet, gcWaitMax = 8 * time.Second, 45 * time.Second
	if b.debug == "" {
		return 0
	}
	start := time.Now()
	last, since := int64(-1), start
	for time.Since(start) < gcWaitMax {
		st, err := gostats.FetchMem("http://" + b.debug)
		if err != nil {
			log.Printf("hold: Go statistics of %s: %v", b.name, err)
			break
		}
		if st.NumGC != last {
			last, since = st.NumGC, time.Now()
		} else if time.Since(since) >= gcQuiet {
			break
		}
		time.Sleep(time.Second)
	}
	waited := time.Since(start)
	log.Printf("hold: %s: no GC for %v (waited %v; %d GCs so far)", b.name, time.Since(since).Round(time.Millisecond), waited.Round(time.Millisecond), last)
	return waited
}

// goStats reads b's Go memory statistics, if it serves them.
func goStats(b *broker) *gostats.Stats {
	if b.debug == "" {
		return nil
	}
	st, err := gostats.Fetch("http://" + b.debug)
	if err != nil {
		log.Printf("hold: Go memory statistics of %s: %v", b.name, err)
		return nil
	}
	return &st
}

// clientsCPU is the CPU the connstorm processes have used, in ticks.
func clientsCPU(ds []*driven) int64 {
	var t int64
	for _, d := range ds {
		c, _ := procstat.CPU(d.cmd.Process.Pid)
		t += c
	}
	return t
}

// idleCPU is pid's CPU over window, in cores.
func idleCPU(ctx context.Context, pid int, window time.Duration) (float64, error) {
	c0, err := procstat.CPU(pid)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	c1, err := procstat.CPU(pid)
	if err != nil {
		return 0, err
	}
	return (time.Duration(c1-c0) * procstat.TickDuration).Seconds() / time.Since(t0).Seconds(), nil
}

// profileIdle fetches a CPU profile of b over the idle window into the
// profile dir, when one is set and b serves pprof; the returned function
// waits for it.
func (s *setup) profileIdle(b *broker, n int, window time.Duration) func() {
	if s.o.profileDir == "" || b.debug == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// CPU over the window, then the heap with every connection held.
		for _, p := range []struct{ kind, query string }{{"cpu", fmt.Sprintf("profile?seconds=%d", int(window.Seconds()))}, {"heap", "heap"}} {
			path := filepath.Join(s.o.profileDir, fmt.Sprintf("%s-idle-%d-%s.pprof", b.name, n, p.kind))
			if err := fetch("http://"+b.debug+"/debug/pprof/"+p.query, path); err != nil {
				log.Printf("hold: %s profile of %s: %v", p.kind, b.name, err)
				continue
			}
			log.Printf("hold: %s profile of %s over the idle window: %s", p.kind, b.name, path)
		}
		// The memory accounting of the held connections: the heap profile's
		// MemStats trailer right after a GC (live heap against heap in use:
		// what fragmentation holds; spans, stacks), and the kernel's
		// view of the process's memory.
		base := filepath.Join(s.o.profileDir, fmt.Sprintf("%s-idle-%d", b.name, n))
		if err := fetch("http://"+b.debug+"/debug/pprof/heap?gc=1&debug=1", base+"-heap.txt"); err != nil {
			log.Printf("hold: heap text of %s: %v", b.name, err)
		}
		for _, f := range []string{"smaps_rollup", "status"} {
			if body, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", b.pid, f)); err == nil {
				_ = os.WriteFile(base+"-"+f+".txt", body, 0o644)
			}
		}
	}()
	return func() { <-done }
}

// fetch GETs url into the file path.
func fetch(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
