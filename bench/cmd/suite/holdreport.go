package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/tether-hub/tether/bench/internal/benchfmt"
)

// Targets of the session-layer issue's acceptance, printed beside the figures.
const (
	targetIdlePct10k   = 1.0 // % of one core for 10,000 idle TLS connections
	targetTLSKiBPerCon = 16  // RSS per idle TLS connection
	targetTCPKiBPerCon = 8   // RSS per idle plain TCP connection
)

// holdSection prints the figures of one hold test, a broker a column, and
// with projection the 1,000,000-device projection computed from them.
func holdSection(b *strings.Builder, o options, res map[string]*holdResult, projection bool) {
	var any *holdResult
	for _, br := range brokerOrder {
		if res[br] != nil {
			any = res[br]
			break
		}
	}
	what := "TLS 1.2 connections (ECDHE-ECDSA-AES128-GCM-SHA256, P-256, full handshakes)"
	if o.holdTCP {
		what = "plain TCP connections"
	}
	fmt.Fprintf(b, "%s %s opened at once by %d `connstorm -drive` processes (≤ %s each, 8 loopback source addresses each from 127.0.0.2 on), %d connects in flight in all. "+
		"Keep-alive %v: each connection sends a PINGREQ every %v, the first at a random point of its first period (≈ %.0f PINGREQ/s in all), and reads the PINGRESP. "+
		"**Idle CPU**: the broker's utime+stime (/proc/<pid>/stat) over %v with every connection held, after it had settled (≤ 5 %% of a core for 1 s, 10 s at most) after the connects; and over half that before the first connect (no connection). "+
		"**RSS**: VmRSS after that window minus VmRSS before the first connect (the broker up and idle), ÷ connections. "+
		"**CPU per connect**: first dial → last CONNACK; and with the work connects leave behind: until the broker had settled, less the idle CPU (all held) over the settling time. "+
		"**CPU per disconnect**: every connection sends DISCONNECT (and close_notify) at once; until the broker has closed its sockets and settled, less the idle CPU with no connection over that time.\n\n",
		benchfmt.Int(any.N), what, any.Procs, benchfmt.Int((any.N+any.Procs-1)/any.Procs), o.conc, any.KeepAlive, any.KeepAlive,
		float64(any.N)/any.KeepAlive.Seconds(), any.Window)
	get := func(f func(*holdResult) float64) func(string) (float64, bool) {
		return func(br string) (float64, bool) {
			h := res[br]
			if h == nil {
				return 0, false
			}
			return f(h), true
		}
	}
	getGo := func(f func(*holdResult) float64) func(string) (float64, bool) {
		return func(br string) (float64, bool) {
			h := res[br]
			if h == nil || h.GoBase == nil || h.GoHeld == nil {
				return 0, false
			}
			return f(h), true
		}
	}
	ms := []metric{
		{"idle: broker CPU, all held", "% of one core", false, get(func(h *holdResult) float64 { return 100 * h.IdleCores }), nil},
		{"idle: broker CPU, no connection (before)", "% of one core", false, get(func(h *holdResult) float64 { return 100 * h.BaseCores }), nil},
		{"idle: the connections' share, per 10,000", "% of one core", false, get(func(h *holdResult) float64 { return 100 * h.connShare10k() }), nil},
		{"idle: PINGREQs sent", "/s", true, get(func(h *holdResult) float64 { return h.PingsPerS }), nil},
		{"idle: PINGRESPs read", "/s", true, get(func(h *holdResult) float64 { return h.PongsPerS }), nil},
		{"RSS per connection", "KiB", false, get(func(h *holdResult) float64 { return h.RSSKiBPerConn }), nil},
		{"RSS with all held", "MiB", false, get(func(h *holdResult) float64 { return float64(h.RSSHeldKiB) / 1024 }), nil},
		{"RSS before the first connect", "MiB", false, get(func(h *holdResult) float64 { return float64(h.RSSBaseKiB) / 1024 }), nil},
		{"Go heap in use per connection (held − before)", "KiB", false, getGo(func(h *holdResult) float64 {
			return float64(h.GoHeld.HeapInuse-h.GoBase.HeapInuse) / 1024 / float64(h.Connected)
		}), nil},
		{"Go stacks per connection (held − before)", "KiB", false, getGo(func(h *holdResult) float64 {
			return float64(h.GoHeld.StackInuse-h.GoBase.StackInuse) / 1024 / float64(h.Connected)
		}), nil},
		{"Go heap goal (next GC) with all held", "MiB", false, getGo(func(h *holdResult) float64 { return float64(h.GoHeld.NextGC) / (1 << 20) }), nil},
		{"connects/s", "", true, get(func(h *holdResult) float64 { return h.ConnectsPerS }), nil},
		{"CONNACK p99, worst client process", "ms", false, get(func(h *holdResult) float64 { return h.LatP99ms }), nil},
		{"broker CPU per connect", "µs", false, get(func(h *holdResult) float64 { return h.CPUusPerConnect }), nil},
		{"broker CPU per connect, with what it leaves behind", "µs", false, get(func(h *holdResult) float64 { return h.CPUusPerConnectAll }), nil},
		{"broker CPU per disconnect", "µs", false, get(func(h *holdResult) float64 { return h.CPUusPerDisconnect }), nil},
	}
	table(b, o.brokers, ms)
	fmt.Fprintf(b, "\nPer broker: connected / failed / lost before the close / closed by the broker (EOF or reset) within 20 s of their DISCONNECT; other load during the idle window (busy cores that were neither the broker nor the clients):")
	for _, br := range brokerOrder {
		if h := res[br]; h != nil {
			fmt.Fprintf(b, " %s %d / %d / %d / %d, %.2f cores%s;", br, h.Connected, h.Failed, h.Lost, h.ClosedByBroker, h.OtherCores, caveat(h))
		}
	}
	b.WriteString("\n")
	if h := res["tether"]; h != nil {
		idle, how := 100*h.IdleCores, fmt.Sprintf("the broker's CPU with %s held", benchfmt.Int(h.Connected))
		if h.Connected != 10000 {
			idle, how = 100*h.connShare10k(), fmt.Sprintf("scaled from %s held: the connections' share only", benchfmt.Int(h.Connected))
		}
		kind, target := "TLS", targetTLSKiBPerCon
		if o.holdTCP {
			kind, target = "plain TCP", targetTCPKiBPerCon
		}
		fmt.Fprintf(b, "\nAgainst the session layer's targets, Tether as built: 10,000 idle %s connections cost %.2f %% of a core (%s; target for TLS < %.0f %%: %s); RSS %.1f KiB per idle %s connection (target ≤ %d KiB: %s).\n",
			kind, idle, how, targetIdlePct10k, verdict(idle < targetIdlePct10k), h.RSSKiBPerConn, kind, target, verdict(h.RSSKiBPerConn <= float64(target)))
	}
	if projection {
		projectionSection(b, o, res)
	}
}

// connShare10k is the idle CPU the connections add over the broker with
// none, per 10,000 connections, in cores.
func (h *holdResult) connShare10k() float64 {
	return (h.IdleCores - h.BaseCores) * 10000 / float64(h.Connected)
}

func caveat(h *holdResult) string {
	var c []string
	if !h.Settled {
		c = append(c, "not ≤ 5 % of a core within 10 s after the connects")
	}
	if !h.Drained {
		c = append(c, "sockets not all closed within 30 s")
	}
	if len(c) == 0 {
		return ""
	}
	return " (" + strings.Join(c, ", ") + ")"
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

// The projection's assumptions.
const (
	projDevices   = 1_000_000
	projRenewalsH = 1_000_000 // renewals an hour: every device once
)

// projection is what 1,000,000 devices on one machine would need, from
// one hold test's measured figures, assuming cost linear in connections.
type projection struct {
	MemGiB       float64 // RSS before the first connect + RSS per connection × 1M
	RenewalsPerS float64
	RenewalUS    float64 // CPU per connect (until idle) + per disconnect
	RenewalCores float64
	IdleCores    float64 // idle CPU with none + the connections' share × 1M / held
	TotalCores   float64
}

func project(h *holdResult) projection {
	p := projection{
		MemGiB:       (float64(h.RSSBaseKiB) + h.RSSKiBPerConn*projDevices) / (1 << 20),
		RenewalsPerS: projRenewalsH / time.Hour.Seconds(),
		RenewalUS:    h.CPUusPerConnectAll + h.CPUusPerDisconnect,
		IdleCores:    h.BaseCores + max(0, h.IdleCores-h.BaseCores)*projDevices/float64(h.Connected),
	}
	p.RenewalCores = p.RenewalsPerS * p.RenewalUS / 1e6
	p.TotalCores = p.RenewalCores + p.IdleCores
	return p
}

func projectionSection(b *strings.Builder, o options, res map[string]*holdResult) {
	fmt.Fprintf(b, "\n### Projection to %s devices on one machine (computed from the figures above)\n\n", benchfmt.Int(projDevices))
	fmt.Fprintf(b, "Assumes every cost grows linearly with connections, as measured at this size. **Memory** = RSS before the first connect + RSS per connection × %s. "+
		"**Renewal wave**: %s devices renew their SAS token once an hour (%.1f renewals/s), each a DISCONNECT and a new connection with a full TLS handshake: "+
		"(CPU per connect with what it leaves behind + CPU per disconnect) × renewals/s. **Keep-alive** of %s idle connections: the idle CPU with no connection + (idle CPU all held − with none) × %s ÷ connections held "+
		"(PINGREQ every %v). Not included: telemetry, the OS's own per-socket memory outside the broker's RSS (socket buffers are kernel memory), and the file limit "+
		"(%s descriptors in one process need RLIMIT_NOFILE above that).\n\n",
		benchfmt.Int(projDevices), benchfmt.Int(projRenewalsH), float64(projRenewalsH)/time.Hour.Seconds(), benchfmt.Int(projDevices), benchfmt.Int(projDevices), o.keepAlive, benchfmt.Int(projDevices))
	get := func(f func(projection) float64) func(string) (float64, bool) {
		return func(br string) (float64, bool) {
			h := res[br]
			if h == nil {
				return 0, false
			}
			return f(project(h)), true
		}
	}
	table(b, o.brokers, []metric{
		{"memory for 1,000,000 connections", "GiB", false, get(func(p projection) float64 { return p.MemGiB }), nil},
		{"CPU per renewal (connect with what it leaves behind + disconnect)", "µs", false, get(func(p projection) float64 { return p.RenewalUS }), nil},
		{"renewal wave, 1,000,000 an hour", "cores", false, get(func(p projection) float64 { return p.RenewalCores }), nil},
		{"keep-alive of 1,000,000 idle connections", "cores", false, get(func(p projection) float64 { return p.IdleCores }), nil},
		{"renewals + keep-alive", "cores", false, get(func(p projection) float64 { return p.TotalCores }), nil},
	})
}
