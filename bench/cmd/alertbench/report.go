package main

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"
)

type report struct {
	config  config
	cost    []costResult
	latency latencyResult
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

func (r report) markdown() string {
	var b strings.Builder
	c := r.config
	fmt.Fprintf(&b, "# Alert engine benchmark, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "`go run ./bench/cmd/alertbench -rules %d -log-rules %d -devices %d -reps %d -measure %s -trials %d` on %d cores (%s/%s), "+
		"a machine shared with other sessions' builds and tests: compare rows of the same run, not absolute numbers across runs.\n\n",
		c.rules, c.logRules, c.devices, c.reps, c.measure, c.trials, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	if len(r.cost) > 0 {
		b.WriteString("## Cost of rules evaluated every second\n\n")
		b.WriteString("CPU of the whole hub process (100 % = one core), measured after the warm-up, variants alternating.\n\n")
		b.WriteString("| rep | variant | CPU | evaluations/s | failed | late rules |\n|---|---|---|---|---|---|\n")
		base := map[int]float64{}
		for i, x := range r.cost {
			rep := i/variantsPer(r.cost) + 1
			if x.metric == 0 && x.log == 0 {
				base[rep] = x.cpuPct
			}
			fmt.Fprintf(&b, "| %d | %s | %.1f %% | %.0f | %d | %d |\n", rep, x.name, x.cpuPct, float64(x.evals)/x.measured.Seconds(), x.failed, x.late)
		}
		b.WriteString("\nExtra CPU over the hub without rules, per variant (mean of the reps), and per evaluation:\n\n")
		sums := map[string][]float64{}
		evals := map[string]float64{}
		var order []string
		for i, x := range r.cost {
			if x.metric == 0 && x.log == 0 {
				continue
			}
			rep := i/variantsPer(r.cost) + 1
			if _, ok := sums[x.name]; !ok {
				order = append(order, x.name)
			}
			sums[x.name] = append(sums[x.name], x.cpuPct-base[rep])
			evals[x.name] += float64(x.evals) / x.measured.Seconds()
		}
		for _, name := range order {
			mean := 0.0
			for _, v := range sums[name] {
				mean += v
			}
			mean /= float64(len(sums[name]))
			perEval := mean / 100 / (evals[name] / float64(len(sums[name]))) // core-seconds per evaluation
			fmt.Fprintf(&b, "- %s: +%.1f %% of a core (%.0f µs of CPU per evaluation)\n", name, mean, perEval*1e6)
		}
		b.WriteString("\n")
	}
	if l := r.latency; len(l.crossToFired) > 0 {
		fmt.Fprintf(&b, "## Crossing → notification (%d trials)\n\n", len(l.crossToFired))
		b.WriteString("100 devices, rule `connectedDeviceCount < 90` (Average over 1 s, every 1 s, auto-resolve after 1), webhook on 127.0.0.1; " +
			"each trial 20 devices send DISCONNECT at a random phase of the evaluation grid. Crossing = the 11th disconnect seen on the journal.\n\n")
		b.WriteString("| interval | p50 | p90 | p99 | max |\n|---|---|---|---|---|\n")
		for _, row := range []struct {
			name string
			ds   []time.Duration
		}{{"crossing → webhook Fired", l.crossToFired}, {"first DISCONNECT → webhook Fired", l.dropToFired}, {"reconnect start → webhook Resolved", l.backToResolved}} {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", row.name, ms(pct(row.ds, .5)), ms(pct(row.ds, .9)), ms(pct(row.ds, .99)), ms(pct(row.ds, 1)))
		}
		b.WriteString("\nThe floor is the design: evaluations run once a second (100 ms past it), and the metric sampler records the second that just ended, " +
			"so a crossing waits 0.1–1.1 s for the next evaluation; the rest is the journal → metrics path and the webhook POST.\n")
	}
	return b.String()
}

func variantsPer(rs []costResult) int {
	n := 0
	for _, x := range rs {
		if x.metric == 0 && x.log == 0 {
			n++
		}
	}
	if n == 0 {
		return len(rs)
	}
	return len(rs) / n
}
