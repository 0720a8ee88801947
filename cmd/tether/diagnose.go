package main

import (
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/insight"
)

func init() { subcommands = append(subcommands, newDiagnoseCmd) }

func newDiagnoseCmd() *cobra.Command {
	var since, until string
	cmd := &cobra.Command{
		Use:   "diagnose DEVICE",
		Short: "Say what is wrong with a device's connection, from its own history",
		Long: `Read the device's connection history (connects, disconnects and refusals
with their codes, sources, SDK versions and token expiries, and its registry
changes) and say what it shows, strongest finding first: a duplicate
identity, token renewals (expected), expired or short-lived tokens and the
device's clock skew, a wrong or rotated key, a disabled or deleted device that
keeps retrying, an idle timeout in the network path, an unstable network, the
hub's own trouble, or flapping that none of these explains. Each finding
comes with its evidence (counts, the time pattern, sources, SDK versions and
sample records), an explanation, the fix, and a KQL query that shows the
records (run it with tether query).

A device without trouble gets "no problem found" with its numbers.
--since and --until take an RFC 3339 time or an age (90m, 6h, 7d); the hub
keeps 7 days of per-device history for this (hourly counts for the last day,
daily before; the last 32 events whole). -o json prints the API's answer
(GET /api/v1/devices/{id}/diagnosis).`,
		Example: `  tether diagnose thermo-1
  tether diagnose thermo-1 --since 6h
  tether diagnose thermo-1 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := outputClient()
			if err != nil {
				return err
			}
			now := time.Now()
			q := url.Values{}
			// Ages become times here, so the answer does not depend on the
			// hub's clock.
			for name, v := range map[string]string{"since": since, "until": until} {
				if v == "" {
					continue
				}
				t, err := connlog.ParseTimeArg(v, now)
				if err != nil {
					return fmt.Errorf("--%s: %w", name, err)
				}
				q.Set(name, t.Format(time.RFC3339Nano))
			}
			path := "/api/v1/devices/" + url.PathEscape(args[0]) + "/diagnosis"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			var d insight.Diagnosis
			if err := c.do(cmd.Context(), "GET", path, nil, &d, nil); err != nil {
				return err
			}
			if clientFlags.output == "json" {
				return printJSON(cmd.OutOrStdout(), d)
			}
			return printDiagnosis(cmd.OutOrStdout(), d)
		},
	}
	cmd.Flags().StringVar(&since, "since", "7d", "start of the window: RFC 3339 time or age (90m, 6h, 7d)")
	cmd.Flags().StringVar(&until, "until", "", "end of the window (default now)")
	return cmd
}

const (
	diagTime  = "2006-01-02 15:04:05.000"
	wrapWidth = 100
)

// printDiagnosis writes the diagnosis for people: the device's numbers,
// then each verdict with its evidence, samples, explanation, fix and
// query.
func printDiagnosis(w io.Writer, d insight.Diagnosis) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Device %s — %s to %s UTC\n", d.DeviceID, d.Since.UTC().Format("2006-01-02 15:04"), d.Until.UTC().Format("2006-01-02 15:04"))
	switch d.Status {
	case insight.StatusProblem:
		fmt.Fprintf(&b, "PROBLEM: %s\n", d.Summary)
	case insight.StatusHealthy:
		fmt.Fprintf(&b, "OK: %s\n", d.Summary)
	default:
		fmt.Fprintf(&b, "%s\n", d.Summary)
	}
	if d.PendingEvents > 0 {
		fmt.Fprintf(&b, "(the hub is still reading its journal: %d events to go; run again for the full picture)\n", d.PendingEvents)
	}
	b.WriteString("\n")
	n := d.Numbers
	if d.Status != insight.StatusNoHistory {
		state := "disconnected"
		if n.Connected {
			state = "connected since " + n.ConnectedSince.UTC().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(&b, "  %s · %d connects (%d token renewals) · %d disconnects · %d refused\n",
			state, n.Connects, n.Renewals, sumMap(n.Disconnects), sumMap(n.Refusals))
		var parts []string
		parts = append(parts, fmt.Sprintf("flap score %d in the last hour (%s)", n.Flap.Score, n.Flap.Trend))
		if n.MedianSessionSeconds > 0 {
			parts = append(parts, "sessions "+seconds(n.MedianSessionSeconds)+" median")
		}
		if n.TokenLifetimeSeconds > 0 {
			parts = append(parts, "token lifetime "+seconds(n.TokenLifetimeSeconds))
		}
		if n.KeepAliveSeconds > 0 {
			parts = append(parts, fmt.Sprintf("keep-alive %d s", n.KeepAliveSeconds))
		}
		fmt.Fprintf(&b, "  %s\n", strings.Join(parts, " · "))
		if len(n.Disconnects) > 0 {
			fmt.Fprintf(&b, "  disconnects: %s\n", mapList(n.Disconnects))
		}
		if len(n.Refusals) > 0 {
			fmt.Fprintf(&b, "  refusals: %s\n", mapList(n.Refusals))
		}
		var srcs []string
		for _, s := range n.Sources {
			srcs = append(srcs, s.MaskedIP)
		}
		if len(srcs) > 0 {
			fmt.Fprintf(&b, "  sources: %s\n", strings.Join(srcs, ", "))
		}
		var sdks []string
		for _, s := range n.SDKVersions {
			sdks = append(sdks, s.SDKVersion)
		}
		if len(sdks) > 0 {
			fmt.Fprintf(&b, "  SDK: %s\n", strings.Join(sdks, ", "))
		}
	}
	if g := d.Registry; g != nil {
		var parts []string
		if g.Status != "" {
			parts = append(parts, g.Status)
		}
		for _, e := range []struct {
			what string
			t    time.Time
		}{{"created", g.Created}, {"disabled", g.Disabled}, {"enabled", g.Enabled}, {"deleted", g.Deleted}, {g.KeyChange + " key changed", g.KeyChanged}} {
			if !e.t.IsZero() {
				parts = append(parts, e.what+" "+e.t.UTC().Format("2006-01-02 15:04:05"))
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(&b, "  registry: %s\n", strings.Join(parts, ", "))
		}
	}
	if p := d.Probe; p != nil {
		wrap(&b, "  ", p.Note)
	}
	for i, v := range d.Verdicts {
		b.WriteString("\n")
		kind := ""
		if v.Benign {
			kind = "  (expected, not a fault)"
		}
		fmt.Fprintf(&b, "%d. %s  confidence %.2f%s\n", i+1, v.Cause, v.Confidence, kind)
		wrap(&b, "   ", v.Title)
		e := v.Evidence
		wrap(&b, "   Evidence: ", e.Pattern)
		if len(e.Sources) > 0 {
			wrap(&b, "     sources: ", strings.Join(e.Sources, ", "))
		}
		if len(e.SDKVersions) > 0 {
			wrap(&b, "     SDK versions: ", strings.Join(e.SDKVersions, ", "))
		}
		if !e.First.IsZero() {
			fmt.Fprintf(&b, "     first %s, latest %s UTC\n", e.First.UTC().Format(diagTime), e.Last.UTC().Format(diagTime))
		}
		if len(e.Samples) > 0 {
			b.WriteString("   Samples:\n")
			for _, s := range e.Samples {
				line := fmt.Sprintf("     %s  %s", s.Time.UTC().Format(diagTime), s.OperationName)
				if s.ResultType != "" {
					line += "  " + s.ResultType + " " + s.ResultDescription
				}
				if s.Reason != "" {
					line += "  " + s.Reason
				}
				if s.MaskedIP != "" {
					line += "  from " + s.MaskedIP
				}
				if s.SessionID != "" {
					line += "  session " + s.SessionID[:min(8, len(s.SessionID))] + "…"
				}
				if s.Note != "" {
					line += "  (" + s.Note + ")"
				}
				b.WriteString(line + "\n")
			}
		}
		wrap(&b, "   Why: ", v.Explanation)
		wrap(&b, "   Fix: ", v.Fix)
		b.WriteString("   Query (tether query):\n")
		// Continuation lines indented: KQL ignores the spaces, so the
		// command still runs as pasted.
		b.WriteString("     tether query " + strings.ReplaceAll(shellQuote(v.Query), "\n", "\n       ") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sumMap(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// mapList: "network 12, takeover 3", largest first.
func mapList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func seconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d >= time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	case d >= time.Minute:
		return fmt.Sprintf("%.0f min", d.Minutes())
	}
	return fmt.Sprintf("%.1f s", s)
}

// wrap writes text after prefix, wrapped at wrapWidth, continuation lines
// indented like the prefix.
func wrap(b *strings.Builder, prefix, text string) {
	if text == "" {
		return
	}
	indent := strings.Repeat(" ", len([]rune(prefix)))
	line := prefix
	width := len([]rune(line))
	first := true
	for _, word := range strings.Fields(text) {
		wl := len([]rune(word))
		if !first && width+1+wl > wrapWidth {
			b.WriteString(line + "\n")
			line, width, first = indent, len(indent), true
		}
		if !first {
			line += " "
			width++
		}
		line += word
		width += wl
		first = false
	}
	b.WriteString(line + "\n")
}

// shellQuote makes s one POSIX shell word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
