package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tether-hub/tether/bench/internal/benchfmt"
	"github.com/tether-hub/tether/bench/internal/stormrun"
)

type env struct {
	Date     string `json:"date"`
	CPU      string `json:"cpu"`
	Cores    int    `json:"cores"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
	Commit   string `json:"commit"`
	NoFile   uint64 `json:"nofile_limit"`
	MemTotal string `json:"mem_total"`
}

func describeEnv(ctx context.Context, root string) env {
	e := env{Date: time.Now().UTC().Format("2006-01-02 15:04 MST"), Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		e.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		l, _, _ := strings.Cut(string(b), "\n")
		e.MemTotal = strings.Join(strings.Fields(l)[1:], " ")
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		e.NoFile = lim.Cur
	}
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		e.Commit = strings.TrimSpace(string(out))
		// Changes outside bench/ went into the tether binary too.
		if st, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--", ".", ":!bench").Output(); err == nil && len(st) > 0 {
			var paths []string
			for _, l := range strings.Split(strings.TrimRight(string(st), "\n"), "\n") {
				if len(l) > 3 && strings.HasSuffix(l, ".go") {
					paths = append(paths, strings.TrimSpace(l[3:]))
				}
			}
			if len(paths) > 0 {
				if len(paths) > 8 {
					paths = append(paths[:8], "…")
				}
				e.Commit += " + uncommitted changes to " + strings.Join(paths, ", ")
			}
		}
	}
	return e
}

var modeName = map[string]string{"tcp": "TCP", "tls12": "TLS1.2", "tls13": "TLS1.3"}

// stat is median [min–max] of one figure over runs.
type stat struct{ med, lo, hi float64 }

func summarize(vals []float64) (stat, bool) {
	s, ok := benchfmt.Summarize(vals)
	return stat{s.Med, s.Lo, s.Hi}, ok
}

func (s stat) format(prec int) string {
	f := func(v float64) string { return commas(v, prec) }
	if s.lo == s.hi {
		return f(s.med)
	}
	return fmt.Sprintf("%s [%s–%s]", f(s.med), f(s.lo), f(s.hi))
}

// commas formats v with prec decimals and thousands separators.
func commas(v float64, prec int) string {
	s := fmt.Sprintf("%.*f", prec, v)
	intPart, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(intPart, "-")
	intPart = strings.TrimPrefix(intPart, "-")
	var b strings.Builder
	for i, r := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	out := b.String()
	if neg {
		out = "-" + out
	}
	if frac != "" {
		out += "." + frac
	}
	return out
}

type cellKey struct {
	mode   string
	c      int
	broker string
}

func report(o options, e env, runs, profiled []run, skipped int, took time.Duration) string {
	var w strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&w, format, a...) }

	byCell := map[cellKey][]*stormrun.Result{}
	byRep := map[cellKey]map[int]*stormrun.Result{} // for the per-repetition ratios
	var errs []string
	for _, r := range runs {
		if r.Err != "" {
			errs = append(errs, fmt.Sprintf("rep %d %s %s C=%d: %s", r.Rep, r.Broker, modeName[r.Mode], r.C, r.Err))
		}
		if r.Result != nil && r.Result.Connected > 0 {
			k := cellKey{r.Mode, r.C, r.Broker}
			byCell[k] = append(byCell[k], r.Result)
			if byRep[k] == nil {
				byRep[k] = map[int]*stormrun.Result{}
			}
			byRep[k][r.Rep] = r.Result
		}
	}
	get := func(k cellKey, f func(*stormrun.Result) float64) (stat, bool) {
		var v []float64
		for _, r := range byCell[k] {
			v = append(v, f(r))
		}
		return summarize(v)
	}
	cell := func(k cellKey, prec int, f func(*stormrun.Result) float64) string {
		if s, ok := get(k, f); ok {
			return s.format(prec)
		}
		return "–"
	}

	clean := 0
	if o.clean {
		clean = 1
	}
	p("# Connect storm: Tether vs bare mochi-mqtt (%s)\n\n", e.Date)
	p("Command: `%s` (took %s", strings.TrimSpace(o.cmdline), took.Round(time.Second))
	if skipped > 0 {
		p("; **%d planned runs skipped** to stay within -timeout %v", skipped, o.timeout)
	}
	p(").\n\n")
	p("Machine: %d × %s, %s RAM, kernel %s, %s, open-files limit %d per process. Built from: %s.\n",
		e.Cores, e.CPU, e.MemTotal, e.Kernel, e.Go, e.NoFile, e.Commit)
	p("Client and brokers share the same cores, so connects/s is a joint figure; server CPU per connect is the portable one.\n\n")
	p("Per run: N = %s MQTT 3.1.1 connections (clean session %d, keep-alive 600 s, client id = device id bench-<i>, "+
		"username `<hub>/bench-<i>/?api-version=%s`, password a device SAS token), source addresses 127.0.0.%d–127.0.0.%d, "+
		"a fresh broker process per run, held idle %v before reading RSS. Brokers alternate within each repetition and the order flips every repetition.\n\n",
		commas(float64(o.n), 0), clean, stormrun.APIVersion, o.srcFrom, o.srcTo, o.hold)

	// Negotiated TLS, as read back from the first connection of each run.
	seen := map[string]bool{}
	var tlsLines []string
	for _, r := range runs {
		if r.Result == nil || r.Result.TLSVersion == "" {
			continue
		}
		s := fmt.Sprintf("%s %s: %s, %s, %s, server key %s", r.Broker, modeName[r.Mode], r.Result.TLSVersion, r.Result.TLSCipher, r.Result.TLSCurve, r.Result.TLSCertKey)
		if !seen[s] {
			seen[s] = true
			tlsLines = append(tlsLines, s)
		}
	}
	if len(tlsLines) > 0 {
		p("TLS as negotiated (full handshake every connect, no resumption): %s.\n\n", strings.Join(tlsLines, "; "))
	}

	var keys []cellKey
	for _, c := range o.concs {
		for _, m := range o.modes {
			for _, b := range o.brokers {
				keys = append(keys, cellKey{m, c, b})
			}
		}
	}
	p("## Results (median [min–max] over runs)\n\n")
	p("| Mode | C | Broker | runs | connects/s | server CPU µs/connect | same until idle | RSS KiB/idle conn | CONNACK p50 ms | CONNACK p99 ms | failed | listen overflows |\n")
	p("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, k := range keys {
		rs := byCell[k]
		failed := 0
		for _, r := range rs {
			failed += r.Failed + r.NotTried
		}
		p("| %s | %d | %s | %d | %s | %s | %s | %s | %s | %s | %d | %s |\n", modeName[k.mode], k.c, k.broker, len(rs),
			cell(k, 0, func(r *stormrun.Result) float64 { return r.ConnectsPerS }),
			cell(k, 0, func(r *stormrun.Result) float64 { return r.ServerCPUusPerConn }),
			cell(k, 0, untilIdle),
			cell(k, 1, func(r *stormrun.Result) float64 { return r.RSSKiBPerConn }),
			cell(k, 1, func(r *stormrun.Result) float64 { return r.LatP50ms }),
			cell(k, 0, func(r *stormrun.Result) float64 { return r.LatP99ms }),
			failed,
			cell(k, 0, func(r *stormrun.Result) float64 { return float64(r.ListenOverflow) }))
	}

	for _, tn := range o.brokers {
		if tn == "bare" || !slices.Contains(o.brokers, "bare") {
			continue
		}
		p("\n## %s / bare mochi (ratio of the medians above)\n\n", tn)
		p("Targets (issue 10): server CPU per connect, until idle, ≤ 1.0 × bare mochi's over TLS and ≤ 1.2 × over plain TCP; RSS per idle connection ≤ 16 KiB over TLS, ≤ 8 KiB over plain TCP. " +
			"The spread column is the range of the repetitions' own ratios (repetition i of both brokers, run next to each other).\n\n")
		p("| Mode | C | CPU µs/connect | CPU until idle | until idle, per-repetition ratios | RSS KiB/conn | connects/s | target CPU | target RSS |\n")
		p("|---|---:|---:|---:|---:|---:|---:|---|---|\n")
		for _, c := range o.concs {
			for _, m := range o.modes {
				t, b := cellKey{m, c, tn}, cellKey{m, c, "bare"}
				ratio := func(f func(*stormrun.Result) float64) (float64, float64, float64, bool) {
					ts, ok1 := get(t, f)
					bs, ok2 := get(b, f)
					if !ok1 || !ok2 || bs.med == 0 {
						return 0, 0, 0, false
					}
					return ts.med / bs.med, ts.med, bs.med, true
				}
				fmtRatio := func(f func(*stormrun.Result) float64, prec int) string {
					x, tv, bv, ok := ratio(f)
					if !ok {
						return "–"
					}
					return fmt.Sprintf("**%.2f** (%s / %s)", x, commas(tv, prec), commas(bv, prec))
				}
				cpu := func(r *stormrun.Result) float64 { return r.ServerCPUusPerConn }
				rss := func(r *stormrun.Result) float64 { return r.RSSKiBPerConn }
				cpuMax, rssMax := 1.0, 16.0
				if m == "tcp" {
					cpuMax, rssMax = 1.2, 8
				}
				cpuTarget, rssTarget := "–", "–"
				if x, _, _, ok := ratio(untilIdle); ok {
					cpuTarget = fmt.Sprintf("%s (≤ %.1f×)", passFail(x <= cpuMax), cpuMax)
				}
				if ts, ok := get(t, rss); ok {
					rssTarget = fmt.Sprintf("%s (≤ %.0f KiB)", passFail(ts.med <= rssMax), rssMax)
				}
				var per []float64
				for rep, tr := range byRep[t] {
					if br := byRep[b][rep]; br != nil && untilIdle(br) != 0 {
						per = append(per, untilIdle(tr)/untilIdle(br))
					}
				}
				spread := "–"
				if st, ok := summarize(per); ok {
					spread = fmt.Sprintf("%.2f [%.2f–%.2f] (%d)", st.med, st.lo, st.hi, len(per))
				}
				p("| %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", modeName[m], c,
					fmtRatio(cpu, 0),
					fmtRatio(untilIdle, 0),
					spread,
					fmtRatio(rss, 1),
					fmtRatio(func(r *stormrun.Result) float64 { return r.ConnectsPerS }, 0),
					cpuTarget, rssTarget)
			}
		}
	}

	p("\n## Other readings (medians)\n\n")
	p("| Mode | C | Broker | RSS before → held MiB | post-GC KiB/conn | broker fds before → held | idle again s | drain s | server CPU to drain ms | client CPU µs/connect | cores busy (other load) |\n")
	p("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, k := range keys {
		if len(byCell[k]) == 0 {
			continue
		}
		med := func(prec int, f func(*stormrun.Result) float64) string {
			s, _ := get(k, f)
			return commas(s.med, prec)
		}
		gc := "–"
		if s, ok := get(k, func(r *stormrun.Result) float64 { return r.RSSGCKiBPerConn }); ok && s.med != 0 {
			gc = commas(s.med, 1)
		}
		p("| %s | %d | %s | %s → %s | %s | %s → %s | %s | %s | %s | %s | %s (%s) |\n", modeName[k.mode], k.c, k.broker,
			med(0, func(r *stormrun.Result) float64 { return float64(r.RSSBeforeKiB) / 1024 }),
			med(0, func(r *stormrun.Result) float64 { return float64(r.RSSHeldKiB) / 1024 }),
			gc,
			med(0, func(r *stormrun.Result) float64 { return float64(r.FDsBefore) }),
			med(0, func(r *stormrun.Result) float64 { return float64(r.FDsHeld) }),
			med(1, func(r *stormrun.Result) float64 { return r.SettleS }),
			med(2, func(r *stormrun.Result) float64 { return r.DrainS }),
			med(0, func(r *stormrun.Result) float64 { return r.DrainCPUms }),
			med(0, func(r *stormrun.Result) float64 { return r.ClientCPUusPerConn }),
			med(2, func(r *stormrun.Result) float64 { return r.BusyCores }),
			med(2, func(r *stormrun.Result) float64 { return r.OtherCores }))
	}

	writeGoMem(p, keys, byCell)

	var notes []string
	for _, r := range runs {
		if r.Result == nil {
			continue
		}
		res := r.Result
		for kind, n := range res.Failures {
			notes = append(notes, fmt.Sprintf("rep %d %s %s C=%d: %d × %s (e.g. %s)", r.Rep, r.Broker, modeName[r.Mode], r.C, n, kind, res.FailSample[kind]))
		}
		if res.NotTried > 0 {
			notes = append(notes, fmt.Sprintf("rep %d %s %s C=%d: %d connects not tried (connect phase cap)", r.Rep, r.Broker, modeName[r.Mode], r.C, res.NotTried))
		}
		if !res.Quiet {
			notes = append(notes, fmt.Sprintf("rep %d %s %s C=%d: broker was not idle before the storm (waited %.0f s)", r.Rep, r.Broker, modeName[r.Mode], r.C, res.QuietWaitS))
		}
		if res.FDsHeld-res.FDsBefore < res.Connected {
			notes = append(notes, fmt.Sprintf("rep %d %s %s C=%d: broker held only %d more fds than before for %d connections", r.Rep, r.Broker, modeName[r.Mode], r.C, res.FDsHeld-res.FDsBefore, res.Connected))
		}
		if !res.Settled {
			notes = append(notes, fmt.Sprintf("rep %d %s %s C=%d: broker still busy %.0f s after the storm (CPU until idle is a lower bound)", r.Rep, r.Broker, modeName[r.Mode], r.C, res.SettleS))
		}
		if !res.Drained {
			notes = append(notes, fmt.Sprintf("rep %d %s %s C=%d: broker did not drain within the cap (%d fds left, before %d)", r.Rep, r.Broker, modeName[r.Mode], r.C, res.FDsAfter, res.FDsBefore))
		}
		if !res.ServerAlive {
			notes = append(notes, fmt.Sprintf("rep %d %s %s C=%d: broker process gone at the end of the run", r.Rep, r.Broker, modeName[r.Mode], r.C))
		}
		if r.Killed {
			notes = append(notes, fmt.Sprintf("rep %d %s %s C=%d: broker did not stop on SIGTERM within 20 s and was killed", r.Rep, r.Broker, modeName[r.Mode], r.C))
		}
	}
	for _, r := range profiled {
		if r.Err != "" {
			errs = append(errs, fmt.Sprintf("profiled run %s %s: %s", r.Broker, modeName[r.Mode], r.Err))
		}
	}
	notes = append(errs, notes...)
	p("\n## Failures and anomalies\n\n")
	if len(notes) == 0 {
		p("None: every connect got CONNACK 0, every broker held one fd per connection, drained after the close and stopped on SIGTERM.\n")
	}
	for _, n := range notes {
		p("- %s\n", n)
	}
	figure := func(r *stormrun.Result) float64 { return r.ServerCPUusPerConn }
	if o.perfTail {
		figure = untilIdle
	}
	writePerf(p, profiled, o.perfTail, figure, func(k cellKey) (float64, bool) {
		st, ok := get(k, figure)
		return st.med, ok
	})
	p("\n## How to read this\n\n")
	p("- Server CPU = broker utime+stime (/proc/<pid>/stat, 10 ms ticks) from just before the first dial to just after the last CONNACK, / connections made. " +
		"\"Until idle\" adds what the broker burned after the last CONNACK until it was back at its idle rate (within 1 %% of a core of it for 2 s; bounded at 30 s), less that idle rate over the whole span: deferred GC, asynchronous event and log handling.\n")
	p("- RSS per idle connection = (VmRSS after holding all connections − VmRSS of the fresh process before the storm) / connections. " +
		"Kernel socket buffers are not in RSS. Post-GC is bare mochi's RSS after runtime.GC + FreeOSMemory (SIGUSR1); Tether has no such hook.\n")
	p("- CONNACK latency = dial start → CONNACK (TCP + TLS + CONNECT). Listen overflows = TcpExt ListenOverflows delta during the connect phase (machine-wide).\n")
	p("- Cores busy = machine-wide non-idle CPU during the connect phase (/proc/stat); other load = that minus broker and client. The machine is shared: other load above ~0.1 cores means someone else's work competed with the run.\n")
	p("- Ratios are of medians. Raw per-run records: the .json file next to this one.\n")
	return w.String()
}

// untilIdle is server CPU per connect from the first dial until the broker
// was idle again after the storm (asynchronous work included), less its
// idle rate over that span (connstorm's figure; results written before it
// had one: connect phase plus settle).
func untilIdle(r *stormrun.Result) float64 {
	if r.ServerCPUUntilIdleUsPerConn != 0 {
		return r.ServerCPUUntilIdleUsPerConn
	}
	return (r.ServerCPUms + r.SettleCPUms) * 1000 / float64(r.Connected)
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "**FAIL**"
}

// writePerf adds the CPU breakdown of the profiled runs: per category, its
// share of the samples and that share of the run's server CPU per connect.
// With tail, the profiles and the figures run until the broker was idle
// again after the storm; figure is the run's CPU per connect over that span.
func writePerf(p func(string, ...any), profiled []run, tail bool, figure func(*stormrun.Result) float64, unprofiled func(cellKey) (float64, bool)) {
	var ok []run
	for _, r := range profiled {
		if r.Err == "" && r.Result != nil && r.PerfSamples > 0 {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return
	}
	span, until := "connect phase", "the last CONNACK"
	if tail {
		span, until = "until idle", "the broker's return to its idle rate after the hold (-perf-tail)"
	}
	p("\n## Where the broker CPU goes (perf, %s)\n\n", span)
	p("One extra run per broker and transport under `perf record -F 997 -g -p <pid>`, from before the first dial to " + until + " " +
		"(not in the tables above: sampling costs the broker some CPU). Each sample goes to the first category that matches a frame of its stack, " +
		"in the order listed. Sampling with call stacks inflates the profiled runs' CPU (first row), more so for Tether's deeper stacks, so the cells apply each share " +
		"to the unprofiled median of the tables above (second row): µs per connect, with the share of samples in parentheses.\n\n")
	names := map[string]bool{}
	for _, r := range ok {
		for _, s := range r.Perf {
			names[s.Name] = true
		}
	}
	var order []string
	for _, c := range perfCategories {
		if names[c.name] {
			order = append(order, c.name)
		}
	}
	for n := range names {
		if !slices.Contains(order, n) {
			order = append(order, n)
		}
	}
	p("| category |")
	for _, r := range ok {
		p(" %s %s |", r.Broker, modeName[r.Mode])
	}
	p("\n|---|")
	for range ok {
		p("---:|")
	}
	base := make([]float64, len(ok))
	p("\n| server CPU µs/connect of the profiled run (samples) |")
	for i, r := range ok {
		p(" %s (%d) |", commas(figure(r.Result), 0), r.PerfSamples)
		base[i] = figure(r.Result)
		if v, found := unprofiled(cellKey{r.Mode, r.C, r.Broker}); found {
			base[i] = v
		}
	}
	p("\n| **server CPU µs/connect, unprofiled median** |")
	for i := range ok {
		p(" **%s** |", commas(base[i], 0))
	}
	p("\n")
	for _, n := range order {
		p("| %s |", n)
		for i, r := range ok {
			cell := "–"
			for _, s := range r.Perf {
				if s.Name == n {
					cell = fmt.Sprintf("%s (%.0f %%)", commas(s.Percent*base[i]/100, 0), s.Percent)
				}
			}
			p(" %s |", cell)
		}
		p("\n")
	}
	var files []string
	for _, r := range ok {
		files = append(files, filepath.Base(r.PerfFile))
	}
	p("\nperf.data files (kept in %s): %s. Look deeper with `perf report -i <file> --children --sort sym`.\n", filepath.Dir(ok[0].PerfFile), strings.Join(files, ", "))
}

// writeGoMem splits RSS per idle connection into what the Go runtime says:
// heap in use, goroutine stacks, and the rest (freed but not yet returned
// heap, runtime overhead), from the brokers' /debug/pprof.
func writeGoMem(p func(string, ...any), keys []cellKey, byCell map[cellKey][]*stormrun.Result) {
	header := false
	for _, k := range keys {
		var rs []*stormrun.Result
		for _, r := range byCell[k] {
			if r.GoroutinesHeld > 0 {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		if !header {
			header = true
			p("\n## Go memory per idle connection (medians; /debug/pprof while all are held, no forced GC)\n\n")
			p("| Mode | C | Broker | goroutines/conn | heap in use KiB/conn | stacks KiB/conn | RSS KiB/conn | RSS − heap − stacks |\n")
			p("|---|---:|---|---:|---:|---:|---:|---:|\n")
		}
		med := func(f func(r *stormrun.Result, n float64) float64) float64 {
			var v []float64
			for _, r := range rs {
				v = append(v, f(r, float64(r.Connected)))
			}
			s, _ := summarize(v)
			return s.med
		}
		heap := func(r *stormrun.Result, n float64) float64 {
			return float64(r.HeapInuseHeldKiB-r.HeapInuseBeforeKiB) / n
		}
		stack := func(r *stormrun.Result, n float64) float64 {
			return float64(r.StackInuseHeldKiB-r.StackInuseBeforeKiB) / n
		}
		p("| %s | %d | %s | %.2f | %.1f | %.1f | %.1f | %.1f |\n", modeName[k.mode], k.c, k.broker,
			med(func(r *stormrun.Result, n float64) float64 { return float64(r.GoroutinesHeld-r.GoroutinesBefore) / n }),
			med(heap), med(stack),
			med(func(r *stormrun.Result, _ float64) float64 { return r.RSSKiBPerConn }),
			med(func(r *stormrun.Result, n float64) float64 { return r.RSSKiBPerConn - heap(r, n) - stack(r, n) }))
	}
}
