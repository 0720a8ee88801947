package probe

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// TableWriter prints a report as a table, a row as each step ends, then
// the findings that need words and the verdict.
type TableWriter struct {
	w      io.Writer
	steps  []Step
	width  int // of the TARGET column
	header bool
}

// NewTableWriter writes to w.
func NewTableWriter(w io.Writer) *TableWriter { return &TableWriter{w: w} }

// findingWidth is how much of a summary the table shows; the rest goes to
// the findings below it.
const findingWidth = 96

// Start prints the run's identity and the column names (use it as
// Config.OnStart).
func (tw *TableWriter) Start(r *Report) {
	proxy := ""
	if r.Proxy != "" {
		proxy = ", through proxy " + r.Proxy
	}
	id := r.DeviceID
	if r.ModuleID != "" {
		id += "/" + r.ModuleID
	}
	fmt.Fprintf(tw.w, "Probing device %s of hub %s at %s: MQTT port %d, HTTPS port %d%s; trusting %s\n\n", id, r.HostName, r.DialHost, r.MQTTPort, r.HTTPSPort, proxy, r.Trust)
	tw.Header(r.Targets()...)
}

// Header prints the column names; Step calls it when it was not called.
func (tw *TableWriter) Header(cfgTargets ...string) {
	if tw.header {
		return
	}
	tw.header = true
	tw.width = len("TARGET")
	for _, t := range cfgTargets {
		tw.width = max(tw.width, utf8.RuneCountInString(t))
	}
	fmt.Fprintf(tw.w, "%-4s  %-9s  %-*s  %-6s  %8s  %s\n", "STEP", "CHECK", tw.width, "TARGET", "RESULT", "TIME", "FINDING")
}

// Step prints one step's row.
func (tw *TableWriter) Step(s Step) {
	if !tw.header {
		tw.Header(s.Target + ":65535")
	}
	tw.steps = append(tw.steps, s)
	took := ""
	if s.Status != Skip {
		took = fmtMillis(s.Millis)
	}
	fmt.Fprintf(tw.w, "%-4d  %-9s  %-*s  %-6s  %8s  %s\n", s.Number, s.Name, tw.width, s.Target, statusWord(s.Status), took, cut(s.Summary, findingWidth))
}

// Finish prints the findings (every step that failed or warned, or whose
// summary was cut, or that has notes) and the verdict.
func (tw *TableWriter) Finish(r *Report) {
	if len(tw.steps) == 0 {
		for _, s := range r.Steps {
			tw.Step(s)
		}
	}
	first := true
	for _, s := range tw.steps {
		long := utf8.RuneCountInString(s.Summary) > findingWidth
		if s.Status == Pass && !long && len(s.Notes) == 0 && s.Hint == "" {
			continue
		}
		if s.Status == Skip && s.Hint == "" && len(s.Notes) == 0 {
			continue
		}
		if first {
			fmt.Fprintln(tw.w)
			first = false
		}
		fmt.Fprintf(tw.w, "%s: %s\n", Ref{s.Number, s.Name, s.Target}, statusWord(s.Status))
		fmt.Fprintf(tw.w, "  %s\n", s.Summary)
		for _, n := range s.Notes {
			fmt.Fprintf(tw.w, "  note: %s\n", n)
		}
		if s.Hint != "" {
			fmt.Fprintf(tw.w, "  what to do: %s\n", s.Hint)
		}
		if k := s.KeepAlive; k != nil {
			for i, rd := range k.Rounds {
				fmt.Fprintf(tw.w, "  round %d: idle %s: %s", i+1, roundIdle(time.Duration(rd.IdleSeconds*float64(time.Second))), rd.Outcome)
				if rd.Outcome == "closed" || rd.Outcome == "reset" {
					fmt.Fprintf(tw.w, " after %s", roundIdle(time.Duration(rd.AfterSeconds*float64(time.Second))))
				}
				if rd.Detail != "" {
					fmt.Fprintf(tw.w, " (%s)", rd.Detail)
				}
				fmt.Fprintln(tw.w)
			}
		}
		if s.TLS != nil && s.TLS.Problem != "" && s.TLS.Problem != "handshake" {
			for i, c := range s.TLS.Chain {
				fmt.Fprintf(tw.w, "  certificate %d: %s, issued by %s, valid %s to %s\n", i, c.Subject, c.Issuer, day(c.NotBefore), day(c.NotAfter))
			}
		}
	}
	fmt.Fprintln(tw.w)
	verdict := strings.ToUpper(string(r.Status))
	if r.ExitStatus != ExitPass {
		verdict += fmt.Sprintf(" (exit status %d)", r.ExitStatus)
	}
	fmt.Fprintf(tw.w, "Result: %s: %s\n", verdict, r.Conclusion)
}

// WriteTable prints a finished report at once.
func WriteTable(w io.Writer, r *Report) {
	tw := NewTableWriter(w)
	tw.Start(r)
	for _, s := range r.Steps {
		tw.Step(s)
	}
	tw.Finish(r)
}

// Targets are the host:port targets a run names (for column widths).
func (r *Report) Targets() []string {
	return []string{
		joinHostPort(r.DialHost, r.MQTTPort), joinHostPort(r.DialHost, r.HTTPSPort),
	}
}

func statusWord(s Status) string {
	switch s {
	case Fail, Warn:
		return strings.ToUpper(string(s))
	}
	return string(s)
}

func fmtMillis(m float64) string {
	d := time.Duration(m * float64(time.Millisecond))
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", m)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
