package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/tether-hub/tether/bench/internal/benchfmt"
)

// stormReport prints the reconnect storms side by side.
func stormReport(b *strings.Builder, o options, rs map[string]*stormResult) {
	fmt.Fprintf(b, "Every device dials at once from %d connstorm -drive -retry processes (at nice %d; TLS 1.2, SAS, the Azure IoT Node SDK's retry: at once, then 100 ms + (2^(x−1)−1)·[50,75) ms up to 10 s), against a fresh `tether serve --dev`: throttled = `--max-connect-rate %g --connect-burst %d` (other limits at their defaults), off = `--no-throttle`. API = GET /devices/{id} every 100 ms during the storm.\n\n",
		(o.stormN+o.perProc-1)/o.perProc, o.clientNice, o.stormRate, int(o.stormRate))
	if len(o.stormArgs) > 0 {
		fmt.Fprintf(b, "The throttled hub's other flags: `%s`.\n\n", strings.Join(o.stormArgs, " "))
	}
	if o.hubCPUs != "" || o.clientCPUs != "" {
		fmt.Fprintf(b, "CPU pinning: hub on CPUs %q, clients on CPUs %q (\"\": not pinned; the suite and its API probe run wherever it was started).\n\n", o.hubCPUs, o.clientCPUs)
	}
	modes := []string{"throttled", "off"}
	row := func(name string, f func(*stormResult) string) {
		fmt.Fprintf(b, "| %s |", name)
		for _, m := range modes {
			if r := rs[m]; r != nil {
				fmt.Fprintf(b, " %s |", f(r))
			} else {
				b.WriteString(" – |")
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("| figure | throttled | off |\n|---|---:|---:|\n")
	row("devices connected / failed", func(r *stormResult) string { return fmt.Sprintf("%s / %d", benchfmt.Int(r.Connected), r.Failed) })
	row("time until all connected (s)", func(r *stormResult) string { return benchfmt.Num(r.TimeToAllS) })
	row("… the configured rate implies (N − burst) / rate (s)", func(r *stormResult) string {
		if !r.Throttled {
			return "–"
		}
		return fmt.Sprintf("%s (%+.0f %%)", benchfmt.Num(r.ExpectedS), 100*(r.TimeToAllS-r.ExpectedS)/r.ExpectedS)
	})
	row("connect attempts (devices retrying)", func(r *stormResult) string { return benchfmt.Int(r.Attempts) })
	row("registry API during the storm: p50 / p99 / max (ms)", func(r *stormResult) string {
		return fmt.Sprintf("%s / %s / %s", benchfmt.Num(r.APIP50), benchfmt.Num(r.APIP99), benchfmt.Num(r.APIMax))
	})
	row("GET /api/v1/health (no registry read) p50 / p99 / max (ms)", func(r *stormResult) string {
		return fmt.Sprintf("%s / %s / %s", benchfmt.Num(r.HealthP50), benchfmt.Num(r.HealthP99), benchfmt.Num(r.HealthMax))
	})
	row("API requests / failed", func(r *stormResult) string { return fmt.Sprintf("%d / %d", r.APIN, r.APIErrors) })
	row("hub CPU, average / peak second (cores)", func(r *stormResult) string {
		return fmt.Sprintf("%.2f / %.2f", r.CPUAvg, r.CPUPeak)
	})
	row("connect timeouts in the log (500008: handshakes that ended in timeouts)", func(r *stormResult) string {
		return fmt.Sprint(r.LogCounts["deviceConnect 500008"])
	})
	row("throttled attempts: Connections log 429001 + 429005", func(r *stormResult) string {
		return fmt.Sprintf("%d + %d", r.LogCounts["deviceConnect 429001"], r.LogCounts["deviceConnect 429005"])
	})
	row("throttled attempts: metric throttledConnects by scope", func(r *stormResult) string { return scopes(r.MetricThrottled) })
	row("failed attempts as the devices saw them", func(r *stormResult) string { return kinds(r.ClientFailures) })
	row("listen-queue overflows (the kernel, before the hub could accept)", func(r *stormResult) string { return fmt.Sprint(r.ListenOverflows) })
	row("connected records in the log", func(r *stormResult) string { return fmt.Sprint(r.LogCounts["deviceConnect Success"]) })
	row("log caught up with the metric", func(r *stormResult) string { return fmt.Sprint(r.LogCaughtUp) })
	for _, m := range modes {
		r := rs[m]
		if r == nil {
			continue
		}
		fmt.Fprintf(b, "\n%s, each second: hub CPU (cores) %s; connected devices %s; TLS handshakes in progress %s\n",
			m, series(r.CPUSeries, "%.2f"), seriesInt(r.ConnectedSeries), seriesInt(r.HandshakesInFlight))
	}
}

func scopes(m map[string]float64) string {
	if len(m) == 0 {
		return "0"
	}
	var parts []string
	var total float64
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %g", k, v))
		total += v
	}
	sort.Strings(parts)
	return fmt.Sprintf("%g (%s)", total, strings.Join(parts, ", "))
}

func kinds(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s × %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

func series(vs []float64, f string) string {
	var parts []string
	for _, v := range vs {
		parts = append(parts, fmt.Sprintf(f, v))
	}
	return strings.Join(parts, " ")
}

func seriesInt(vs []int) string {
	var parts []string
	for _, v := range vs {
		parts = append(parts, fmt.Sprint(v))
	}
	return strings.Join(parts, " ")
}
