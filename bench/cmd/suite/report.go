package main

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"

	"github.com/tether-hub/tether/bench/internal/benchfmt"
	"github.com/tether-hub/tether/bench/internal/stormrun"
)

// metric is one row: a value per broker; lower or higher is better.
type metric struct {
	name   string
	unit   string
	higher bool // higher is better
	get    func(b string) (float64, bool)
	// reps, when set, gives the broker's reading in each repetition (get
	// is then their median): the cell shows their range and the ratio
	// columns the range of the per-repetition ratios.
	reps func(b string) []float64
}

func (r *result) markdown(o options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmark suite, %s\n\n", r.started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "`bench/run` — %s; %d CPUs (shared with other sessions' builds and tests: figures move with their load; the brokers ran one after another in the same run, so ratios are the robust part). Took %.0fs.\n\n",
		describe(), runtime.NumCPU(), r.took.Seconds())
	fmt.Fprintf(&b, "Brokers: **tether** (`tether serve --dev`: SAS auth, registry, presence, journal, Connections log, events), ")
	if contains(o.brokers, "tether-prev") {
		fmt.Fprintf(&b, "**tether-prev** (the same, built from BENCH_PREV: %s), ", o.prevDesc)
	}
	fmt.Fprintf(&b, "**bare** (mochi-mqtt v2.7.9, allow-all, no hooks), **mosquitto** (%s, password file with every device's SAS token as its password, hashed by mosquitto_passwd). Ratios are tether ÷ the other; for a cost (CPU, memory, latency) below 1 is better, for a rate above 1 is.\n\n", mosquittoVersion())
	if o.storms {
		r.stormSection(&b, o)
	}
	if len(r.idle) > 0 {
		fmt.Fprintf(&b, "\n## %s idle %s connections\n\n", benchfmt.Int(o.idleN), o.holdKind())
		holdSection(&b, o, r.idle, false)
	}
	if len(r.scale) > 0 {
		fmt.Fprintf(&b, "\n## %s %s connections in one broker process, and the projection to 1,000,000 devices\n\n", benchfmt.Int(o.scaleN), o.holdKind())
		holdSection(&b, o, r.scale, true)
	}
	if len(r.storms2) > 0 {
		fmt.Fprintf(&b, "\n## Reconnect storm: %s TLS devices at once, throttled and not\n\n", benchfmt.Int(o.stormN))
		stormReport(&b, o, r.storms2)
	}
	if r.eventlat != "" {
		fmt.Fprintf(&b, "\n## Event latency (Tether only: neither baseline has connection events or webhooks)\n\n%s\n", demote(r.eventlat))
	}
	if len(r.errs) > 0 {
		fmt.Fprintf(&b, "\n## Problems\n\n")
		for _, e := range r.errs {
			fmt.Fprintf(&b, "- %s\n", e)
		}
	}
	return b.String()
}

func (r *result) stormSection(b *strings.Builder, o options) {
	fmt.Fprintf(b, "Connect storm: %d connections, %d in flight, clean session, from 127.0.0.2…20, every CONNECT with username and SAS token (bench/cmd/connstorm). TLS 1.2 = ECDHE-ECDSA-AES128-GCM-SHA256, P-256, full handshakes. Broker CPU per connect, until idle: the broker's utime+stime from the first dial until it was back at its idle rate after the storm (within 1 %% of a core of it for 2 s, after the 3 s hold), less that idle rate (read for 2 s before the storm) over the span, ÷ connections: everything the connects caused (journal stores, log flushes, consumers catching up, GC), whenever it ran; \"up to the last CONNACK\" is the part of it before the last CONNACK. Idle memory: VmRSS with every connection held 3 s, minus VmRSS before the storm (the broker up and idle), ÷ connections. Telemetry: %d TLS connections, each keeping %d QoS 1 PUBLISHes of 64 bytes unacknowledged, %s measured after a 1 s warm-up.\n\n",
		o.n, o.conc, o.pubConns, o.pubWindow, o.pubFor)
	stormReps := func(mode string, f func(*stormrun.Result) float64) func(string) []float64 {
		return func(br string) []float64 {
			var vs []float64
			for _, res := range r.storms[mode][br] {
				if res.Connected > 0 {
					vs = append(vs, f(res))
				}
			}
			return vs
		}
	}
	stormMetric := func(name, unit string, higher bool, mode string, f func(*stormrun.Result) float64) metric {
		reps := stormReps(mode, f)
		return metric{name, unit, higher, func(br string) (float64, bool) {
			s, ok := benchfmt.Summarize(reps(br))
			return s.Med, ok
		}, reps}
	}
	pub := func(f func(*pubResult) float64) func(string) (float64, bool) {
		return func(br string) (float64, bool) {
			p := r.pubs[br]
			if p == nil || p.Acked == 0 {
				return 0, false
			}
			return f(p), true
		}
	}
	var ms []metric
	for _, mode := range []string{"tcp", "tls12"} {
		label := map[string]string{"tcp": "TCP", "tls12": "TLS 1.2"}[mode]
		ms = append(ms,
			stormMetric("connect storm "+label+": connects/s", "", true, mode, func(x *stormrun.Result) float64 { return x.ConnectsPerS }),
			stormMetric("connect storm "+label+": broker CPU per connect, until idle", "µs", false, mode, func(x *stormrun.Result) float64 { return x.ServerCPUUntilIdleUsPerConn }),
			stormMetric("connect storm "+label+": … of it up to the last CONNACK", "µs", false, mode, func(x *stormrun.Result) float64 { return x.ServerCPUusPerConn }),
			stormMetric("connect storm "+label+": CONNACK p99", "ms", false, mode, func(x *stormrun.Result) float64 { return x.LatP99ms }),
			stormMetric("idle memory "+label+": RSS per connection", "KiB", false, mode, func(x *stormrun.Result) float64 { return x.RSSKiBPerConn }),
		)
	}
	ms = append(ms,
		metric{"telemetry TLS QoS 1: messages/s acknowledged", "", true, pub(func(p *pubResult) float64 { return p.PerSecond }), nil},
		metric{"telemetry TLS QoS 1: broker CPU per message", "µs", false, pub(func(p *pubResult) float64 { return p.CPUusPerMsg }), nil},
	)
	if o.reps > 1 {
		fmt.Fprintf(b, "Connect storms: %d per broker and transport, alternated (the brokers' order reversed every other repetition); a storm row's cell is the median [min–max] of the repetitions, its ratio the ratio of the medians [min–max of the repetitions' own ratios, repetition i against repetition i]. Telemetry ran in the first repetition. The readings below list the repetitions in order.\n\n", o.reps)
	}
	table(b, o.brokers, ms)
	each := func(title string, f func(*stormrun.Result) string) {
		fmt.Fprintf(b, "\n%s:", title)
		for _, mode := range []string{"tcp", "tls12"} {
			for _, br := range o.brokers {
				var vs []string
				for _, res := range r.storms[mode][br] {
					vs = append(vs, f(res))
				}
				if len(vs) > 0 {
					fmt.Fprintf(b, " %s/%s %s;", br, mode, strings.Join(vs, ", "))
				}
			}
		}
	}
	each("Other load on the machine during the connect storms (cores busy that were neither broker nor client)",
		func(x *stormrun.Result) string { return fmt.Sprintf("%.2f", x.OtherCores) })
	each("Failed connects", func(x *stormrun.Result) string { return fmt.Sprint(x.Failed + x.NotTried) })
	each("Broker idle (≤ 5 % of a core for 1 s) before the memory baseline was read",
		func(x *stormrun.Result) string { return fmt.Sprint(x.Quiet) })
	each("Broker idle again after the storm (false: the CPU until idle is a lower bound), seconds from the first dial, and its idle rate (% of a core)",
		func(x *stormrun.Result) string {
			return fmt.Sprintf("%v %.1f s %.2f", x.Settled, x.UntilIdleS, 100*x.IdleBaseCores)
		})
	b.WriteString("\n")
}

// brokerOrder is the order of the brokers' columns.
var brokerOrder = []string{"tether", "tether-prev", "bare", "mosquitto"}

var brokerLabel = map[string]string{"tether": "tether", "tether-prev": "tether-prev", "bare": "bare mochi", "mosquitto": "mosquitto"}

// table prints one row per metric: a column per broker that ran, then
// tether ÷ each other broker.
func table(b *strings.Builder, brokers []string, ms []metric) {
	var cols, others []string
	for _, br := range brokerOrder {
		if contains(brokers, br) {
			cols = append(cols, br)
			if br != "tether" && contains(brokers, "tether") {
				others = append(others, br)
			}
		}
	}
	b.WriteString("| figure |")
	for _, c := range cols {
		fmt.Fprintf(b, " %s |", brokerLabel[c])
	}
	for _, c := range others {
		fmt.Fprintf(b, " tether/%s |", strings.Fields(brokerLabel[c])[0])
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", len(cols)+len(others)) + "\n")
	for _, m := range ms {
		unit := ""
		if m.unit != "" {
			unit = " (" + m.unit + ")"
		}
		fmt.Fprintf(b, "| %s%s |", m.name, unit)
		for _, c := range cols {
			v, ok := m.get(c)
			cell := num(v, ok)
			if m.reps != nil {
				if s, ok := benchfmt.Summarize(m.reps(c)); ok {
					cell = s.String()
				}
			}
			fmt.Fprintf(b, " %s |", cell)
		}
		t, tok := m.get("tether")
		for _, c := range others {
			v, ok := m.get(c)
			cell := ratio(t, tok, v, ok)
			if m.reps != nil && cell != "–" {
				if s, ok := benchfmt.Summarize(pairRatios(m.reps("tether"), m.reps(c))); ok && s.Lo != s.Hi {
					cell += fmt.Sprintf(" [%.2f–%.2f]", s.Lo, s.Hi)
				}
			}
			fmt.Fprintf(b, " %s |", cell)
		}
		b.WriteString("\n")
	}
}

// pairRatios divides each of a's repetitions by b's of the same index.
func pairRatios(a, b []float64) []float64 {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if b[i] != 0 {
			rs = append(rs, a[i]/b[i])
		}
	}
	return rs
}

func num(v float64, ok bool) string {
	if !ok {
		return "–"
	}
	return benchfmt.Num(v)
}

func ratio(a float64, aok bool, b float64, bok bool) string {
	if !aok || !bok || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// demote turns a section's headings into lower levels.
func demote(md string) string {
	var out []string
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "#") {
			l = "##" + l
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

func describe() string {
	rev, _ := exec.Command("git", "describe", "--always", "--dirty").Output()
	return fmt.Sprintf("commit %s, %s", strings.TrimSpace(string(rev)), runtime.Version())
}

func mosquittoVersion() string {
	out, _ := exec.Command("dpkg-query", "-W", "-f", "${Version}", "mosquitto").Output()
	if len(out) == 0 {
		return "Mosquitto"
	}
	return "Mosquitto " + string(out)
}
