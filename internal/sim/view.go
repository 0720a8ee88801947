package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// view shows a run while it goes: a one-screen table redrawn every second
// on a terminal, a line every 10 s otherwise, or JSON lines.
type view struct {
	env      Env
	cfg      *Config
	mu       sync.Mutex
	lastReg  time.Time
	lastLine time.Time
	prev     Snapshot
	prevAt   time.Time
}

func newView(env Env, cfg *Config) *view { return &view{env: env, cfg: cfg} }

func (v *view) json(kind string, m map[string]any) {
	m["type"] = kind
	b, _ := json.Marshal(m)
	v.mu.Lock()
	fmt.Fprintf(v.env.Out, "%s\n", b)
	v.mu.Unlock()
}

// registered is PutDevices' progress callback.
func (v *view) registered(done int) {
	v.mu.Lock()
	if time.Since(v.lastReg) < 500*time.Millisecond && done < v.cfg.Devices {
		v.mu.Unlock()
		return
	}
	v.lastReg = time.Now()
	v.mu.Unlock()
	switch {
	case v.env.JSON:
		v.json("register", map[string]any{"done": done, "of": v.cfg.Devices})
	case v.env.Live:
		v.mu.Lock()
		fmt.Fprintf(v.env.Out, "\rregistering devices %s %d/%d", bar(float64(done)/float64(v.cfg.Devices), 30), done, v.cfg.Devices)
		v.mu.Unlock()
	}
}

func (v *view) registeredDone(n int, d time.Duration) {
	switch {
	case v.env.JSON:
		v.json("registered", map[string]any{"devices": n, "seconds": d.Seconds()})
	default:
		if v.env.Live {
			fmt.Fprintln(v.env.Out)
		}
		fmt.Fprintf(v.env.Out, "registered %d devices in %.1fs (%.0f/s)\n", n, d.Seconds(), float64(n)/d.Seconds())
	}
}

func bar(frac float64, width int) string {
	frac = min(max(frac, 0), 1)
	n := int(frac * float64(width))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

// progress shows the fleet's counters and what the observer has seen.
func (v *view) progress(start time.Time, s Snapshot, o *Observer, drv *driver) {
	now := time.Now()
	el := now.Sub(start)
	rate := 0.0
	if !v.prevAt.IsZero() {
		rate = float64(s.Connects-v.prev.Connects) / now.Sub(v.prevAt).Seconds()
	}
	v.prev, v.prevAt = s, now
	p50, p99, _ := o.liveLatency()
	got := o.Count()
	var dv driverView
	if drv != nil {
		dv = driverView{Invoked: drv.invoked.Load(), Answered: drv.answered.Load(),
			DesiredSent: drv.desiredSent.Load(), DesiredOK: drv.desiredDone.Load(), Skipped: drv.skipped.Load()}
	}
	if v.env.JSON {
		m := map[string]any{"elapsedS": el.Seconds(), "stats": s, "connectsPerS": rate,
			"eventsReceived": got, "latencyP50Ms": ms(p50), "latencyP99Ms": ms(p99)}
		if drv != nil {
			m["service"] = dv
		}
		v.json("progress", m)
		return
	}
	if !v.env.Live {
		if now.Sub(v.lastLine) < 10*time.Second {
			return
		}
		v.lastLine = now
		fmt.Fprintf(v.env.Out, "%6.0fs connected %d/%d, connects %d (%.0f/s), renewals %d, telemetry %d/%d acked, events %d, errors %d\n",
			el.Seconds(), s.Connected, v.cfg.Devices, s.Connects, rate, s.Renewals, s.TelemetryAcked, s.TelemetrySent, got, sum(s.Errors))
		if v.cfg.Twin || v.cfg.Methods {
			fmt.Fprintf(v.env.Out, "        twin requests %d/%d answered, desired pushes %d (updates %d), method calls %d answered of %d (devices got %d)\n",
				s.TwinAnswers, s.TwinRequests, s.DesiredPushes, dv.DesiredSent, dv.Answered, dv.Invoked, s.MethodCalls)
		}
		return
	}
	var b strings.Builder
	b.WriteString("\x1b[H\x1b[J")
	fmt.Fprintf(&b, "tether sim — %s profile, %d devices, faults %s\n", v.cfg.Profile, v.cfg.Devices, orNone(v.cfg.Faults.String()))
	if v.cfg.Duration > 0 {
		fmt.Fprintf(&b, "%s %s / %s\n\n", bar(el.Seconds()/v.cfg.Duration.Seconds(), 40), el.Round(time.Second), v.cfg.Duration)
	} else {
		fmt.Fprintf(&b, "%s (Ctrl-C stops)\n\n", el.Round(time.Second))
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "connected\t%d / %d\tconnects/s\t%.0f\n", s.Connected, v.cfg.Devices, rate)
	fmt.Fprintf(tw, "connects\t%d\tdisconnects\t%d\n", s.Connects, s.Disconnects)
	fmt.Fprintf(tw, "renewals\t%d\tretries\t%d\n", s.Renewals, s.Retries)
	fmt.Fprintf(tw, "telemetry sent\t%d\tacked\t%d\n", s.TelemetrySent, s.TelemetryAcked)
	fmt.Fprintf(tw, "events received\t%d\tlatency p50 / p99\t%.1f / %.1f ms\n", got, ms(p50), ms(p99))
	if v.cfg.Twin || v.cfg.Methods {
		fmt.Fprintf(tw, "twin requests\t%d\tanswered\t%d\n", s.TwinRequests, s.TwinAnswers)
		fmt.Fprintf(tw, "desired updates\t%d\tpushes received\t%d\n", dv.DesiredSent, s.DesiredPushes)
		fmt.Fprintf(tw, "method calls\t%d\tanswered 200\t%d\n", dv.Invoked, dv.Answered)
		fmt.Fprintf(tw, "calls at devices\t%d\tdevice answers\t%d\n", s.MethodCalls, s.MethodAnswers)
	}
	tw.Flush()
	if len(s.Faults) > 0 {
		b.WriteString("\nfaults   ")
		for _, k := range sortedKeys(s.Faults) {
			fmt.Fprintf(&b, " %s %d", k, s.Faults[k])
		}
		b.WriteString("\n")
	}
	if len(s.Errors) > 0 {
		b.WriteString("\nerrors by code\n")
		for i, k := range sortedKeys(s.Errors) {
			if i == 8 {
				break
			}
			fmt.Fprintf(&b, "  %-40s %d\n", k, s.Errors[k])
		}
	}
	v.mu.Lock()
	io.WriteString(v.env.Out, b.String())
	v.mu.Unlock()
}

// driverView is the service side's live counters.
type driverView struct {
	Invoked     int64 `json:"methodsInvoked"`
	Answered    int64 `json:"methodsAnswered"`
	DesiredSent int64 `json:"desiredSent"`
	DesiredOK   int64 `json:"desiredOk"`
	Skipped     int64 `json:"skipped"`
}

// settling shows the wait for the hub's reports after the stop.
func (v *view) settling(got, want int) {
	if v.env.JSON {
		return
	}
	if v.env.Live {
		fmt.Fprintf(v.env.Out, "\rwaiting for events %s %d/%d ", bar(float64(got)/float64(max(want, 1)), 30), got, want)
	}
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "\n== tether sim report ==\n")
	fmt.Fprintf(w, "profile %s, %d devices (%d process(es)), ramp %.0f/s, token TTL %s, telemetry every %s, WebSockets %.0f%%, faults %s\n",
		c.Profile, c.Devices, r.Processes, c.Ramp, c.profile().TokenTTL, durOr(c.Telemetry, "never"), c.WebSockets*100, orNone(c.Faults.String()))
	fmt.Fprintf(w, "ran %s (%s), registered %d devices in %.1fs\n", r.Stopped.Sub(r.Started).Round(time.Millisecond),
		map[bool]string{true: "interrupted", false: "full duration"}[r.Interrupted], r.Registered, r.RegisterS)
	s := r.Stats
	fmt.Fprintf(w, "connects %d, disconnects %d, renewal reconnects %d, retries %d (throttled %d), gave up %d; telemetry %d sent, %d acknowledged\n",
		s.Connects, s.Disconnects, s.Renewals, s.Retries, s.Throttled, s.GaveUp, s.TelemetrySent, s.TelemetryAcked)
	if s.LateRenewals > 0 || s.ForcedCloses > 0 {
		fmt.Fprintf(w, "hub slowness seen by the devices: %d renewals found the token already expired, %d DISCONNECTs not closed by the hub within 30 s (forced)\n",
			s.LateRenewals, s.ForcedCloses)
	}
	r.Storm.writeText(w)
	if len(s.Faults) > 0 {
		fmt.Fprintf(w, "faults injected:")
		for _, k := range sortedKeys(s.Faults) {
			fmt.Fprintf(w, " %s %d", k, s.Faults[k])
		}
		fmt.Fprintf(w, " (skipped, device offline: %d)\n", s.FaultsSkipped)
	}
	if len(s.Errors) > 0 {
		fmt.Fprintf(w, "failed connects:")
		for _, k := range sortedKeys(s.Errors) {
			fmt.Fprintf(w, " [%s] %d", k, s.Errors[k])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "events expected %d, received %d (other devices' %d); log records %d; settled=%v after %.1fs\n\n",
		r.Expected, r.Observed, r.Foreign, r.LogRecords, r.Settled, r.SettleS)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "source\ttype\tResultType\texpected\tobserved\tmatched\tmissing\twrong code\tunexpected\tduplicated\tout of order\tp50 ms\tp99 ms\tmax ms\t")
	for _, row := range r.Comparison.Rows {
		lat := "\t\t\t"
		if row.Source == "events" && row.Matched > 0 {
			lat = fmt.Sprintf("%.1f\t%.1f\t%.1f\t", row.P50ms, row.P99ms, row.Maxms)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", row.Source, row.Type, orDash(row.Result),
			row.Expected, row.Observed, row.Matched, row.Missing, row.WrongCode, row.Unexpected, row.Duplicated, row.OutOfOrder, lat)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nby cause (what the simulator did → what the hub had to report)\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "cause\tsource\ttype\tResultType\texpected\tmatched\t")
	for _, cr := range r.Comparison.Causes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t\n", cr.Cause, cr.Source, cr.Type, orDash(cr.Result), cr.Expected, cr.Matched)
	}
	tw.Flush()
	cm := r.Comparison
	fmt.Fprintf(w, "\nrenewal reconnects: simulator %d, DeviceConnected marked tokenRenewal by the hub %d", cm.RenewalsExpected, cm.RenewalsMarked)
	if cm.RenewalsUnsure > 0 {
		fmt.Fprintf(w, "; %d connects the hub may or may not mark (first connects, reconnects after a forced close)", cm.RenewalsUnsure)
	}
	if cm.RenewalsMarkedPaired > 0 {
		fmt.Fprintf(w, " (%d of them on devices of duplicate-id pairs: a twin connecting right after the other's renewal DISCONNECT)", cm.RenewalsMarkedPaired)
	}
	fmt.Fprintln(w)
	if cm.AltMatched > 0 {
		fmt.Fprintf(w, "%d disconnects were recorded with their alternative code: 400027 when the device's reconnect (or its duplicate-id twin's connect) reached the hub before the hub had handled the drop or the DISCONNECT; around a hub crash, 500001 for one the hub had not stored, or the session's own code for one it had\n", cm.AltMatched)
	}
	if hc := r.HubCrash; hc != nil && hc.Err == "" {
		expected := "its open sessions are expected as DeviceDisconnected 500001 (hub-restart)"
		if n := r.Config.crashNode(); n != "" {
			expected = "the cluster node at " + n + " was killed; its open sessions are expected as DeviceDisconnected 404104 (node-lost, recorded by a surviving node; 500001 hub-restart if the node was back first)"
		}
		fmt.Fprintf(w, "hub crash: killed at +%s, accepting connections again %.1fs later; %s", hc.At.Sub(r.Started).Round(time.Millisecond), hc.BackS, expected)
		if cm.MaybeMet+cm.MaybeUnmet > 0 {
			fmt.Fprintf(w, "; of the reports connects in flight at the kill may or may not have (the hub stored the connect before it died, or not), %d were made and %d not (either is right)", cm.MaybeMet, cm.MaybeUnmet)
		}
		fmt.Fprintln(w)
	}
	if rr := r.RollingRestart; rr != nil && rr.Err == "" {
		fmt.Fprintf(w, "rolling restart from +%s: each node stopped (SIGTERM) and started in turn, %v s each; the sessions open on a stopping node are expected as DeviceDisconnected (server-shutdown)\n", rr.At.Sub(r.Started).Round(time.Millisecond), rr.Steps)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.Twins != nil {
		r.Twins.WriteText(w, c)
	}
	if r.Scenarios != nil {
		fmt.Fprintln(w)
		for _, l := range r.Scenarios.Lines() {
			fmt.Fprintln(w, l)
		}
	}
	verdict := "OK: the hub reported everything the simulator did, in order, with the expected codes"
	if !r.OK() {
		verdict = "MISMATCH"
		for _, e := range cm.Examples {
			fmt.Fprintf(w, "  mismatch: %s\n", e)
		}
	}
	off := 0
	if cm.RenewalsUnpairedDiff < 0 {
		off = cm.RenewalsUnpairedDiff
	} else if cm.RenewalsUnpairedDiff > cm.RenewalsUnsure {
		off = cm.RenewalsUnpairedDiff - cm.RenewalsUnsure
	}
	fmt.Fprintf(w, "%s — missing %d, out of order %d, duplicated %d, wrong code %d, unexpected %d, renewal marks off by %d",
		verdict, cm.Missing, cm.OutOfOrder, cm.Duplicated, cm.WrongCode, cm.Unexpected, off)
	if r.Twins != nil {
		fmt.Fprintf(w, "; twins and methods: %d failures", len(r.Twins.Failures))
	}
	fmt.Fprintln(w)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func durOr(d time.Duration, s string) string {
	if d == 0 {
		return s
	}
	return d.String()
}
