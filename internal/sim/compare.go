package sim

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/hubclient"
)

// Row compares one kind of report (source, type, ResultType).
type Row struct {
	Source     string  `json:"source"` // "events" (webhook) or "log" (Connections)
	Type       string  `json:"type"`   // DeviceConnected, DeviceDisconnected, deviceConnect, deviceDisconnect
	Result     string  `json:"resultType"`
	Expected   int     `json:"expected"`
	Observed   int     `json:"observed"` // unique, with this code
	Matched    int     `json:"matched"`
	Missing    int     `json:"missing"`
	WrongCode  int     `json:"wrongCode"`  // expected with this code, observed with another
	Unexpected int     `json:"unexpected"` // observed with this code, not expected
	Duplicated int     `json:"duplicated"` // the same sequence number delivered again
	OutOfOrder int     `json:"outOfOrder"` // arrived after a later sequence number of the device
	P50ms      float64 `json:"p50Ms,omitempty"`
	P99ms      float64 `json:"p99Ms,omitempty"`
	Maxms      float64 `json:"maxMs,omitempty"`
}

// CauseRow says how the expectations of one cause fared.
type CauseRow struct {
	Cause    string `json:"cause"`
	Source   string `json:"source"`
	Type     string `json:"type"`
	Result   string `json:"resultType"`
	Expected int    `json:"expected"`
	Matched  int    `json:"matched"`
}

// Comparison is the comparator's result.
type Comparison struct {
	Rows   []Row      `json:"rows"`
	Causes []CauseRow `json:"causes"`
	// Renewal reconnects the simulator made, and DeviceConnected events
	// the hub marked tokenRenewal.
	RenewalsExpected int `json:"renewalsExpected"`
	RenewalsMarked   int `json:"renewalsMarked"`
	// RenewalsMarkedPaired are marked connects of devices in duplicate-id
	// pairs: a twin's connect right after the other twin's renewal
	// DISCONNECT looks like a renewal to the hub, and is one in effect.
	RenewalsMarkedPaired int `json:"renewalsMarkedPaired"`
	// RenewalsUnpairedDiff is marked − certain over the devices that are
	// not in pairs (certain: renewals the hub must mark); it must lie in
	// [0, RenewalsUnsure], the connects the hub may or may not mark.
	RenewalsUnpairedDiff int `json:"renewalsUnpairedDiff"`
	RenewalsUnsure       int `json:"renewalsUnsure"`
	// AltMatched expectations were met by their alternative code (Expect.Alt).
	AltMatched int `json:"altMatched"`
	// MaybeMet and MaybeUnmet count the expectations the hub may or may
	// not have met (Expect.Maybe: connects in flight when the hub was
	// killed); neither counts as a mismatch.
	MaybeMet   int `json:"maybeMet,omitempty"`
	MaybeUnmet int `json:"maybeUnmet,omitempty"`
	// Totals over Rows.
	Missing, Duplicated, OutOfOrder, WrongCode, Unexpected int
	// Examples are the first mismatches (missing, wrong code,
	// unexpected) with their device and times, to look them up in the
	// hub's log.
	Examples []string `json:"examples,omitempty"`
}

// maxExamples bounds Comparison.Examples.
const maxExamples = 20

type rowKey struct{ source, typ, result string }

type cmp struct {
	dev      int32 // the device match is comparing
	examples []string
	alt      int
	maybe    [2]int // met, unmet
	rows     map[rowKey]*Row
	causes   map[[4]string]*CauseRow
	lat      map[rowKey][]time.Duration
}

func (c *cmp) row(k rowKey) *Row {
	r := c.rows[k]
	if r == nil {
		r = &Row{Source: k.source, Type: k.typ, Result: k.result}
		c.rows[k] = r
	}
	return r
}

func (c *cmp) cause(cause Cause, k rowKey, matched bool) {
	ck := [4]string{cause.String(), k.source, k.typ, k.result}
	r := c.causes[ck]
	if r == nil {
		r = &CauseRow{Cause: ck[0], Source: k.source, Type: k.typ, Result: k.result}
		c.causes[ck] = r
	}
	r.Expected++
	if matched {
		r.Matched++
	}
}

// item is one expectation or observation reduced to what matching needs.
type item struct {
	typ, result string
	alt         string
	maybe       bool
	cause       Cause
	at          int64 // expectation: simulator time; observation: arrival
	seq         string
}

// Compare matches the ledger against the webhook events and the log
// records of the run's devices (index by device; deviceless log records
// in the -1 slot).
func Compare(ledger []Expect, events []observed, logs map[int32][]hubclient.LogRecord) Comparison {
	c := &cmp{rows: map[rowKey]*Row{}, causes: map[[4]string]*CauseRow{}, lat: map[rowKey][]time.Duration{}}
	var out Comparison
	expEv := map[int32][]item{}
	expLog := map[int32][]item{}
	paired := map[int32]bool{}
	for _, e := range ledger {
		if e.Cause == CauseTakeover {
			paired[e.Device] = true
		}
	}
	certain := 0
	for _, e := range ledger {
		if e.Kind == KindConnected && e.Renewal {
			out.RenewalsExpected++
		}
		if e.Kind == KindConnected && !paired[e.Device] {
			switch {
			case e.RenewalUnsure:
				out.RenewalsUnsure++
			case e.Renewal:
				certain++
			}
		}
		it := item{result: e.Result, alt: e.Alt, maybe: e.Maybe, cause: e.Cause, at: e.At}
		switch e.Kind {
		case KindConnected:
			it.typ = KindConnected.String()
			expEv[e.Device] = append(expEv[e.Device], it)
			it.typ = "deviceConnect"
			expLog[e.Device] = append(expLog[e.Device], it)
		case KindDisconnected:
			it.typ = KindDisconnected.String()
			expEv[e.Device] = append(expEv[e.Device], it)
			it.typ = "deviceDisconnect"
			if e.TokenExpiry || e.ExpiryRace {
				first := it
				first.result, first.alt = ResultUnauthorized, ""
				first.maybe = it.maybe || !e.TokenExpiry
				expLog[e.Device] = append(expLog[e.Device], first)
			}
			expLog[e.Device] = append(expLog[e.Device], it)
		case KindRefused, KindTimeout:
			it.typ = "deviceConnect"
			expLog[e.Device] = append(expLog[e.Device], it)
		}
	}

	// Webhook events: duplicates and order first, per device.
	obsEv := map[int32][]item{}
	seen := map[int32]map[string]bool{}
	maxSeq := map[int32]string{}
	for _, o := range events {
		k := rowKey{"events", o.Kind.String(), o.Result}
		if o.Seq != "" && o.Seq < maxSeq[o.Device] {
			c.row(k).OutOfOrder++
			c.example("events device %d: %s %q (seq %s) arrived at %s after seq %s", o.Device, o.Kind, o.Result, o.Seq, stamp(o.Arrived), maxSeq[o.Device])
		}
		if o.Seq > maxSeq[o.Device] {
			maxSeq[o.Device] = o.Seq
		}
		if seen[o.Device] == nil {
			seen[o.Device] = map[string]bool{}
		}
		dk := o.Seq + "/" + o.Kind.String()
		if seen[o.Device][dk] {
			c.row(k).Duplicated++
			c.example("events device %d: %s %q (seq %s) delivered again at %s", o.Device, o.Kind, o.Result, o.Seq, stamp(o.Arrived))
			continue
		}
		seen[o.Device][dk] = true
		if o.Kind == KindConnected && o.Renewal {
			out.RenewalsMarked++
			if paired[o.Device] {
				out.RenewalsMarkedPaired++
			}
		}
		obsEv[o.Device] = append(obsEv[o.Device], item{typ: o.Kind.String(), result: o.Result, at: o.Arrived, seq: o.Seq})
	}
	obsLog := map[int32][]item{}
	for dev, recs := range logs {
		seenLog := map[string]bool{}
		for _, r := range recs {
			k := rowKey{"log", r.OperationName, r.ResultType}
			dk := r.SequenceNumber + "/" + r.OperationName + "/" + r.ResultType
			if r.SequenceNumber != "" && seenLog[dk] {
				c.row(k).Duplicated++
				continue
			}
			seenLog[dk] = true
			obsLog[dev] = append(obsLog[dev], item{typ: r.OperationName, result: r.ResultType, at: r.TimeGenerated.UnixNano(), seq: r.SequenceNumber})
		}
	}
	out.RenewalsUnpairedDiff = (out.RenewalsMarked - out.RenewalsMarkedPaired) - certain
	for _, dev := range deviceSet(expEv, obsEv) {
		c.dev = dev
		c.match("events", expEv[dev], obsEv[dev], true)
	}
	for _, dev := range deviceSet(expLog, obsLog) {
		c.dev = dev
		c.match("log", expLog[dev], obsLog[dev], false)
	}
	out.Examples = c.examples

	out.AltMatched = c.alt
	out.MaybeMet, out.MaybeUnmet = c.maybe[0], c.maybe[1]
	for k, r := range c.rows {
		if l := c.lat[k]; len(l) > 0 {
			slices.Sort(l)
			r.P50ms = ms(l[len(l)/2])
			r.P99ms = ms(l[len(l)*99/100])
			r.Maxms = ms(l[len(l)-1])
		}
		out.Rows = append(out.Rows, *r)
		out.Missing += r.Missing
		out.Duplicated += r.Duplicated
		out.OutOfOrder += r.OutOfOrder
		out.WrongCode += r.WrongCode
		out.Unexpected += r.Unexpected
	}
	sort.Slice(out.Rows, func(i, j int) bool {
		a, b := out.Rows[i], out.Rows[j]
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.Result < b.Result
	})
	for _, r := range c.causes {
		out.Causes = append(out.Causes, *r)
	}
	sort.Slice(out.Causes, func(i, j int) bool {
		a, b := out.Causes[i], out.Causes[j]
		for _, p := range [][2]string{{a.Cause, b.Cause}, {a.Source, b.Source}, {a.Type, b.Type}, {a.Result, b.Result}} {
			if p[0] != p[1] {
				return p[0] < p[1]
			}
		}
		return false
	})
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func deviceSet(a, b map[int32][]item) []int32 {
	var out []int32
	for d := range a {
		out = append(out, d)
	}
	for d := range b {
		if _, ok := a[d]; !ok {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// match pairs one device's expectations with its observations of one
// source: per type and code in order (expectations by time, observations
// by sequence number, else arrival); what is left of a type pairs up as
// wrong codes; the rest is missing or unexpected.
func (c *cmp) match(source string, exp, obs []item, latency bool) {
	slices.SortStableFunc(exp, func(a, b item) int { return cmpInt(a.at, b.at) })
	slices.SortStableFunc(obs, func(a, b item) int {
		if a.seq != b.seq && a.seq != "" && b.seq != "" {
			if a.seq < b.seq {
				return -1
			}
			return 1
		}
		return cmpInt(a.at, b.at)
	})
	type tk struct{ typ, result string }
	expBy := map[tk][]item{}
	obsBy := map[tk][]item{}
	for _, e := range exp {
		expBy[tk{e.typ, e.result}] = append(expBy[tk{e.typ, e.result}], e)
	}
	for _, o := range obs {
		obsBy[tk{o.typ, o.result}] = append(obsBy[tk{o.typ, o.result}], o)
		c.row(rowKey{source, o.typ, o.result}).Observed++
	}
	leftExp := map[string][]item{}
	leftObs := map[string][]item{}
	for k, es := range expBy {
		// Certain expectations first; a maybe only takes what is left.
		slices.SortStableFunc(es, func(a, b item) int { return cmpBool(a.maybe, b.maybe) })
		os := obsBy[k]
		rk := rowKey{source, k.typ, k.result}
		r := c.row(rk)
		n := min(len(es), len(os))
		r.Matched += n
		r.Expected += n
		var rest []item
		for _, e := range es[n:] {
			if e.maybe {
				c.maybe[1]++ // not reported: allowed
				continue
			}
			rest = append(rest, e)
		}
		r.Expected += len(rest)
		for i, e := range es[:n] {
			if e.maybe {
				c.maybe[0]++
			}
			c.cause(e.cause, rk, true)
			if latency {
				c.lat[rk] = append(c.lat[rk], time.Duration(os[i].at-e.at))
			}
		}
		leftExp[k.typ] = append(leftExp[k.typ], rest...)
		obsBy[k] = os[n:]
	}
	for k, os := range obsBy {
		leftObs[k.typ] = append(leftObs[k.typ], os...)
	}
	// What is left may have been met by its alternative code.
	for typ, es := range leftExp {
		var still []item
		for _, e := range es {
			os := leftObs[typ]
			j := slices.IndexFunc(os, func(o item) bool { return e.alt != "" && slices.Contains(strings.Split(e.alt, "|"), o.result) })
			if j < 0 {
				still = append(still, e)
				continue
			}
			rk := rowKey{source, typ, e.result}
			c.row(rk).Matched++
			c.alt++
			c.cause(e.cause, rk, true)
			if latency {
				c.lat[rk] = append(c.lat[rk], time.Duration(os[j].at-e.at))
			}
			leftObs[typ] = slices.Delete(os, j, j+1)
		}
		leftExp[typ] = still
	}
	for typ, es := range leftExp {
		os := leftObs[typ]
		n := min(len(es), len(os))
		for i, e := range es {
			rk := rowKey{source, typ, e.result}
			c.cause(e.cause, rk, false)
			r := c.row(rk)
			if i < n {
				r.WrongCode++
				c.example("%s device %d: %s %q (%s, at %s) recorded %q (seq %s, at %s)", source, c.dev, typ, e.result, e.cause, stamp(e.at), os[i].result, os[i].seq, stamp(os[i].at))
			} else {
				r.Missing++
				c.example("%s device %d: %s %q (%s, at %s) missing", source, c.dev, typ, e.result, e.cause, stamp(e.at))
			}
		}
		leftObs[typ] = os[n:]
	}
	bad := false
	for typ, os := range leftObs {
		for _, o := range os {
			c.row(rowKey{source, typ, o.result}).Unexpected++
			c.example("%s device %d: %s %q unexpected (seq %s, at %s)", source, c.dev, typ, o.result, o.seq, stamp(o.at))
			bad = true
		}
	}
	for _, es := range leftExp {
		bad = bad || len(es) > 0
	}
	if bad {
		c.example("%s device %d: expected %s; observed %s", source, c.dev, itemList(exp), itemList(obs))
	}
}

// itemList shows a device's expectations or observations in order (a
// mismatch's context).
func itemList(l []item) string {
	var b strings.Builder
	for i, it := range l {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %q", it.typ, it.result)
		if it.alt != "" {
			fmt.Fprintf(&b, "|%q", it.alt)
		}
		if it.maybe {
			b.WriteString("?")
		}
		if it.cause != 0 {
			fmt.Fprintf(&b, " (%s)", it.cause)
		}
		if it.seq != "" {
			fmt.Fprintf(&b, " seq …%s", it.seq[max(0, len(it.seq)-6):])
		}
		fmt.Fprintf(&b, " %s", stamp(it.at))
	}
	return b.String()
}

func (c *cmp) example(format string, a ...any) {
	if len(c.examples) < maxExamples {
		c.examples = append(c.examples, fmt.Sprintf(format, a...))
	}
}

// stamp is a unix-nanosecond time as the hub's log shows it (UTC).
func stamp(ns int64) string { return time.Unix(0, ns).UTC().Format("15:04:05.000") }

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
