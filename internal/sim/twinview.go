package sim

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteText prints the twin and method check for people.
func (t *TwinReport) WriteText(w io.Writer, c Config) {
	p := c.profile()
	fmt.Fprintf(w, "\ntwins and direct methods (%s profile: %s)\n", p.Name, twinStyle(p, c))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round trip\tcount\tp50 ms\tp95 ms\tp99 ms\tmax ms\t")
	line := func(name string, l LatencySummary) {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t\n", name, l.Count, l.P50ms, l.P95ms, l.P99ms, l.Maxms)
	}
	line("twin GET", t.Get.Latency)
	line("reported patch", t.Reported.Latency)
	line("method call (200, via REST)", t.Methods.Latency)
	line("desired update → push", t.Desired.Latency)
	tw.Flush()

	for _, r := range []struct {
		name string
		rr   RequestReport
	}{{"twin GETs", t.Get}, {"reported patches", t.Reported}} {
		fmt.Fprintf(w, "%s: %d sent, %d answered OK, %d unanswered past the timeout (%d of them answered late), %d left when the connection ended, %d unknown $rid, %d bad",
			r.name, r.rr.Sent, r.rr.OK, r.rr.TimedOut, r.rr.Late, r.rr.Abandoned, r.rr.UnknownRid, r.rr.Bad)
		if len(r.rr.Status) > 0 {
			fmt.Fprintf(w, ", other statuses %v", r.rr.Status)
		}
		fmt.Fprintln(w)
	}

	d := t.Desired
	fmt.Fprintf(w, "desired updates: %d sent (%d failed), %d pushes received; to devices ready throughout %d, pushed %d (%d of %d on subscriptions kept from an earlier session), missing %d; others %d, pushed %d; duplicated %d, misrouted %d, malformed %d, wrong version %d, not the driver's %d\n",
		d.Sent, d.Failed, d.Pushes, d.Required, d.RequiredReceived, d.ReceivedKept, d.RequiredKept, d.Missing, d.Optional, d.OptionalReceived,
		d.Duplicated, d.Misrouted, d.BadPushes, d.WrongVersion, d.Foreign)

	m := t.Methods
	fmt.Fprintf(w, "direct methods: %d calls (%d skipped at the driver's in-flight bound); outcomes %s; devices got %d, answered %d (%d answers due while offline or silent)\n",
		m.Invoked, m.Skipped, formatOutcomes(m.Outcomes), m.Received, m.Answers, m.AnswersDropped)
	if len(m.Expect) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  expected\twhy\tcalls\tas expected\tgot")
		for _, r := range m.Expect {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\n", r.Expect, r.Why, r.Calls, r.Matched, formatOutcomes(r.Got))
		}
		tw.Flush()
	}
	if len(t.Failures) == 0 {
		fmt.Fprintln(w, "twins and methods OK: every request answered, every required push and expected outcome delivered to the right device")
		return
	}
	fmt.Fprintln(w, "twins and methods FAILED:")
	for _, f := range t.Failures {
		fmt.Fprintf(w, "  - %s\n", f)
	}
}

func formatOutcomes(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, m[k])
	}
	return b.String()
}

// twinStyle describes what the devices do with twins and methods.
func twinStyle(p Profile, c Config) string {
	var parts []string
	if !c.Twin && !c.Methods {
		return "twins and methods off"
	}
	if c.Twin {
		when := "before the first GET"
		if p.DesiredAfterGet {
			when = "after the first GET's answer"
		}
		rep := "reported once at start-up"
		if c.ReportedEvery > 0 {
			rep = "reported every " + c.ReportedEvery.String()
		}
		parts = append(parts, "desired subscribed "+when, rep)
	}
	if c.Methods {
		parts = append(parts, fmt.Sprintf("methods answered after %s", c.MethodDelay))
	}
	if p.Resubscribe {
		parts = append(parts, "SUBSCRIBE again after a reconnect")
	} else {
		parts = append(parts, "no SUBSCRIBE after a reconnect (the session keeps them)")
	}
	if c.Twin && p.RegetTwin {
		parts = append(parts, "GET again after a reconnect")
	}
	if c.MethodRate > 0 {
		parts = append(parts, fmt.Sprintf("driver: methods %s (no answer %.0f%%, offline %.0f%%, timeout %s)",
			FormatRate(c.MethodRate), c.MethodNoAnswer*100, c.MethodOffline*100, c.MethodTimeout))
	}
	if c.DesiredRate > 0 {
		parts = append(parts, "desired updates "+FormatRate(c.DesiredRate))
	}
	return strings.Join(parts, "; ")
}
