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
}

func (r *result) markdown(o options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmark suite, %s\n\n", r.started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "`bench/run` — %s; %d CPUs (shared with other sessions' builds and tests: figures move with their load; the brokers ran one after another in the same run, so ratios are the robust part). Took %.0fs.\n\n",
		describe(), runtime.NumCPU(), r.took.Seconds())
	fmt.Fprintf(&b, "Brokers: **tether** (`tether serve --dev`: SAS auth, registry, presence, journal, Connections log, events), **bare** (mochi-mqtt v2.7.9, allow-all, no hooks), **mosquitto** (%s, password file with every device's SAS token as its password, hashed by mosquitto_passwd). Ratios are tether ÷ baseline; for a cost (CPU, memory, latency) below 1 is better, for a rate above 1 is.\n\n", mosquittoVersion())
	fmt.Fprintf(&b, "Connect storm: %d connections, %d in flight, clean session, from 127.0.0.2…20, every CONNECT with username and SAS token (bench/cmd/connstorm). TLS 1.2 = ECDHE-ECDSA-AES128-GCM-SHA256, P-256, full handshakes. Telemetry: %d TLS connections, each keeping %d QoS 1 PUBLISHes of 64 bytes unacknowledged, %s measured after a 1 s warm-up.\n\n",
		o.n, o.conc, o.pubConns, o.pubWindow, o.pubFor)
	storm := func(mode string, f func(*stormrun.Result) float64) func(string) (float64, bool) {
		return func(br string) (float64, bool) {
			res := r.storms[mode][br]
			if res == nil || res.Connected == 0 {
				return 0, false
			}
			return f(res), true
		}
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
			metric{"connect storm " + label + ": connects/s", "", true, storm(mode, func(x *stormrun.Result) float64 { return x.ConnectsPerS })},
			metric{"connect storm " + label + ": broker CPU per connect", "µs", false, storm(mode, func(x *stormrun.Result) float64 { return x.ServerCPUusPerConn })},
			metric{"connect storm " + label + ": CONNACK p99", "ms", false, storm(mode, func(x *stormrun.Result) float64 { return x.LatP99ms })},
			metric{"idle memory " + label + ": RSS per connection", "KiB", false, storm(mode, func(x *stormrun.Result) float64 { return x.RSSKiBPerConn })},
		)
	}
	ms = append(ms,
		metric{"telemetry TLS QoS 1: messages/s acknowledged", "", true, pub(func(p *pubResult) float64 { return p.PerSecond })},
		metric{"telemetry TLS QoS 1: broker CPU per message", "µs", false, pub(func(p *pubResult) float64 { return p.CPUusPerMsg })},
	)
	fmt.Fprintf(&b, "| figure | tether | bare mochi | mosquitto | tether/bare | tether/mosquitto |\n|---|---:|---:|---:|---:|---:|\n")
	for _, m := range ms {
		t, tok := m.get("tether")
		bare, bok := m.get("bare")
		mq, mok := m.get("mosquitto")
		unit := ""
		if m.unit != "" {
			unit = " (" + m.unit + ")"
		}
		fmt.Fprintf(&b, "| %s%s | %s | %s | %s | %s | %s |\n", m.name, unit, num(t, tok), num(bare, bok), num(mq, mok),
			ratio(t, tok, bare, bok), ratio(t, tok, mq, mok))
	}
	fmt.Fprintf(&b, "\nOther load on the machine during the connect storms (cores busy that were neither broker nor client):")
	for _, mode := range []string{"tcp", "tls12"} {
		for _, br := range o.brokers {
			if res := r.storms[mode][br]; res != nil {
				fmt.Fprintf(&b, " %s/%s %.2f;", br, mode, res.OtherCores)
			}
		}
	}
	fmt.Fprintf(&b, "\nFailed connects:")
	for _, mode := range []string{"tcp", "tls12"} {
		for _, br := range o.brokers {
			if res := r.storms[mode][br]; res != nil {
				fmt.Fprintf(&b, " %s/%s %d;", br, mode, res.Failed+res.NotTried)
			}
		}
	}
	b.WriteString("\n")
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
