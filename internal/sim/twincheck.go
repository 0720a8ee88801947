package sim

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"time"
)

// The check of twins and direct methods: what the driver sent against
// what the devices got and answered, with the devices' spans saying what
// the hub had to deliver.
//
//	direct method calls   expected outcome
//	  to a device that never connects                     404103
//	  "echo" to a device ready (SpanMethods) throughout   200 with this call's echo
//	  "unhandled" to a device ready throughout            504101
//	  to a device offline (no SpanOnline) throughout      404103
//	  otherwise (a connect, renewal or drop during it)    200, 404103 or 504101
//	desired updates: a push of that version to a device ready (SpanDesired)
//	  from the request until pushGrace after its answer is required.
//
// Anything delivered to the wrong device or call, delivered twice, or
// answered with an unexpected status fails the run; so does a device twin
// request (GET, reported patch) left unanswered past --twin-timeout on a
// live connection, or answered with a $rid that was not asked.

// Margins of the check.
const (
	// offlineGrace: the hub may see a connection end a little after the
	// device ended it.
	offlineGrace = 2 * time.Second
	// pushGrace: a push queued as the update is answered needs a moment
	// to be written; a device that disconnects sooner may miss it.
	pushGrace = 2 * time.Second
)

// Method call outcomes.
const (
	OutcomeOK         = "200"
	OutcomeNotOnline  = "404103"
	OutcomeTimeout    = "504101"
	OutcomeAny        = "any" // an expectation: one of the three above
	outcomeMisrouted  = "200 wrong echo"
	maxFailureSamples = 3
)

// RequestReport is how one kind of device twin request fared.
type RequestReport struct {
	Sent       int64            `json:"sent"`
	OK         int64            `json:"ok"`
	Status     map[string]int64 `json:"status,omitempty"`
	TimedOut   int64            `json:"timedOut"`
	Late       int64            `json:"late"`
	Abandoned  int64            `json:"abandoned"`
	UnknownRid int64            `json:"unknownRid"`
	Bad        int64            `json:"bad"`
	BadSample  string           `json:"badSample,omitempty"`
	Latency    LatencySummary   `json:"latency"`
}

func requestReport(s RequestStats) RequestReport {
	return RequestReport{Sent: s.Sent, OK: s.OK, Status: s.Status, TimedOut: s.TimedOut, Late: s.Late,
		Abandoned: s.Abandoned, UnknownRid: s.Unknown, Bad: s.Bad, BadSample: s.BadSample, Latency: s.Latency.Summary()}
}

// DesiredReport compares desired updates with the pushes.
type DesiredReport struct {
	Sent             int            `json:"sent"`
	Failed           int            `json:"failed"` // the REST update did not answer 200
	FailedBy         map[string]int `json:"failedBy,omitempty"`
	Required         int            `json:"required"` // to a device ready throughout
	RequiredReceived int            `json:"requiredReceived"`
	Missing          int            `json:"missing"`
	// RequiredKept and ReceivedKept: of those, to devices whose desired
	// subscription the hub kept from an earlier session (no SUBSCRIBE in
	// the current one: a renewal reconnect of the Node SDK).
	RequiredKept     int            `json:"requiredKept"`
	ReceivedKept     int            `json:"receivedKept"`
	Optional         int            `json:"optional"` // the device was not ready throughout
	OptionalReceived int            `json:"optionalReceived"`
	Pushes           int            `json:"pushes"` // pushes the devices received
	Duplicated       int            `json:"duplicated"`
	Misrouted        int            `json:"misrouted"`    // another device's update
	BadPushes        int            `json:"badPushes"`    // not JSON, versions disagree
	WrongVersion     int            `json:"wrongVersion"` // push version ≠ the update's answer
	Foreign          int            `json:"foreign"`      // pushes of updates the driver did not make
	Latency          LatencySummary `json:"latency"`      // update sent → push received
	Samples          []string       `json:"samples,omitempty"`
}

// MethodExpectRow is one expectation of direct method calls.
type MethodExpectRow struct {
	Expect  string `json:"expect"`
	Why     string `json:"why"`
	Calls   int    `json:"calls"`
	Matched int    `json:"matched"`
	// Unanswered calls got no HTTP answer (counted apart: their outcome
	// is unknown).
	Unanswered int            `json:"unanswered,omitempty"`
	Got        map[string]int `json:"got"`
}

// MethodReport compares direct method calls with the devices' side.
type MethodReport struct {
	Invoked        int               `json:"invoked"`
	Skipped        int64             `json:"skipped"` // the driver was at its in-flight bound
	Outcomes       map[string]int    `json:"outcomes"`
	Expect         []MethodExpectRow `json:"expect"`
	Received       int               `json:"received"`   // calls the devices received
	Misrouted      int               `json:"misrouted"`  // wrong echo, or a call delivered to another device
	Duplicated     int               `json:"duplicated"` // a call delivered twice
	Foreign        int               `json:"foreign"`    // calls the driver did not make
	Unanswered     int               `json:"unanswered"` // no HTTP answer from the hub (transport error, timeout)
	Answers        int64             `json:"answers"`
	AnswersDropped int64             `json:"answersDropped"` // due while the device was offline or silent
	Latency        LatencySummary    `json:"latency"`        // round trip of 200 answers, REST call included
	Samples        []string          `json:"samples,omitempty"`
}

// TwinReport is the check of twins and direct methods.
type TwinReport struct {
	Get      RequestReport `json:"get"`
	Reported RequestReport `json:"reported"`
	Desired  DesiredReport `json:"desired"`
	Methods  MethodReport  `json:"methods"`
	// Failures says what fails the run; empty when everything matched.
	Failures []string `json:"failures,omitempty"`
}

// OK reports whether the hub delivered and answered everything as
// expected.
func (t *TwinReport) OK() bool { return t == nil || len(t.Failures) == 0 }

// spanIndex holds the spans per kind and device, by start.
type spanIndex map[SpanKind]map[int32][]Span

func indexSpans(spans []Span) spanIndex {
	x := spanIndex{}
	for _, s := range spans {
		if x[s.Kind] == nil {
			x[s.Kind] = map[int32][]Span{}
		}
		x[s.Kind][s.Dev] = append(x[s.Kind][s.Dev], s)
	}
	for _, m := range x {
		for _, l := range m {
			slices.SortFunc(l, func(a, b Span) int { return cmpInt(a.From, b.From) })
		}
	}
	return x
}

// covering returns the span of dev that covers [from, to], if one does.
func (x spanIndex) covering(k SpanKind, dev int32, from, to int64) (Span, bool) {
	for _, s := range x[k][dev] {
		if s.From <= from && s.To >= to {
			return s, true
		}
	}
	return Span{}, false
}

// touches reports whether a span of dev, extended by grace at its end,
// overlaps [from, to].
func (x spanIndex) touches(k SpanKind, dev int32, from, to int64, grace time.Duration) bool {
	for _, s := range x[k][dev] {
		if s.From <= to && s.To+int64(grace) >= from {
			return true
		}
	}
	return false
}

// expectCall is what a call should have come back with, and why.
func expectCall(c CallRecord, x spanIndex, paired map[int32]bool) (string, string) {
	switch {
	case c.Dev < 0:
		return OutcomeNotOnline, "the device never connects"
	case paired[c.Dev]:
		return OutcomeAny, "duplicate-id pair: either copy may hold the session"
	}
	if s, ok := x.covering(SpanMethods, c.Dev, c.T0, c.T1); ok {
		why := "echo, device ready throughout"
		exp := OutcomeOK
		if c.Method != methodEcho {
			why, exp = "no handler, device ready throughout", OutcomeTimeout
		}
		if s.Kept {
			why += " (subscription kept from an earlier session)"
		}
		return exp, why
	}
	switch {
	case !x.touches(SpanOnline, c.Dev, c.T0, c.T1, offlineGrace):
		return OutcomeNotOnline, "device offline throughout"
	}
	return OutcomeAny, "the device connected, left or subscribed during the call"
}

// callOutcome names what a call came back with.
func callOutcome(c CallRecord) string {
	switch {
	case c.Err != "":
		return "error: " + c.Err
	case c.Status == 200 && c.Bad != "":
		return outcomeMisrouted
	case c.Status == 200:
		return OutcomeOK
	case c.Number == 404103:
		return OutcomeNotOnline
	case c.Number == 504101:
		return OutcomeTimeout
	case c.Number != 0:
		return fmt.Sprintf("%d %d", c.Status, c.Number)
	}
	return strconv.Itoa(c.Status)
}

func outcomeMatches(expect, got, method string) bool {
	if expect == OutcomeAny {
		return got == OutcomeNotOnline || got == OutcomeTimeout || (got == OutcomeOK && method == methodEcho)
	}
	return got == expect
}

type failures struct{ list []string }

func (f *failures) add(n int64, format string, a ...any) {
	if n > 0 {
		f.list = append(f.list, fmt.Sprintf("%d "+format, append([]any{n}, a...)...))
	}
}

func sample(list *[]string, s string) {
	if len(*list) < maxFailureSamples {
		*list = append(*list, s)
	}
}

// CheckTwins compares what the driver did (calls, updates; skipped calls
// it could not make) with what the devices recorded.
func CheckTwins(led *TwinLedger, calls []CallRecord, updates []DesiredRecord, skipped int64) *TwinReport {
	if led == nil {
		led = &TwinLedger{}
	}
	var fl failures
	r := &TwinReport{Get: requestReport(led.Get), Reported: requestReport(led.Reported)}
	for _, kind := range []struct {
		name string
		rr   RequestReport
	}{{"twin GETs", r.Get}, {"reported patches", r.Reported}} {
		fl.add(kind.rr.TimedOut, "%s unanswered after --twin-timeout on a live connection", kind.name)
		fl.add(kind.rr.UnknownRid, "answers to %s with a $rid the device had not asked (%s)", kind.name, kind.rr.BadSample)
		fl.add(kind.rr.Bad, "bad answers to %s (%s)", kind.name, kind.rr.BadSample)
		for _, st := range slices.Sorted(maps.Keys(kind.rr.Status)) {
			fl.add(kind.rr.Status[st], "%s answered with status %s", kind.name, st)
		}
	}
	x := indexSpans(led.Spans)
	paired := map[int32]bool{}
	for _, d := range led.Paired {
		paired[d] = true
	}
	r.Methods = checkMethods(led, calls, x, paired, skipped, &fl)
	r.Desired = checkDesired(led, updates, x, paired, &fl)
	r.Failures = fl.list
	return r
}

func checkMethods(led *TwinLedger, calls []CallRecord, x spanIndex, paired map[int32]bool, skipped int64, fl *failures) MethodReport {
	m := MethodReport{Invoked: len(calls), Skipped: skipped, Outcomes: map[string]int{},
		Received: len(led.Calls), Answers: led.Answers, AnswersDropped: led.AnswersDropped}
	rows := map[[2]string]*MethodExpectRow{}
	var lat Latency
	byN := make(map[int64]CallRecord, len(calls))
	for _, c := range calls {
		byN[c.N] = c
		got := callOutcome(c)
		m.Outcomes[got]++
		if got == OutcomeOK {
			lat.Add(time.Duration(c.T1 - c.T0))
		}
		if got == outcomeMisrouted {
			m.Misrouted++
			sample(&m.Samples, c.Bad)
		}
		exp, why := expectCall(c, x, paired)
		k := [2]string{exp, why}
		row := rows[k]
		if row == nil {
			row = &MethodExpectRow{Expect: exp, Why: why, Got: map[string]int{}}
			rows[k] = row
		}
		row.Calls++
		row.Got[got]++
		switch {
		case outcomeMatches(exp, got, c.Method):
			row.Matched++
		case c.Err != "":
			row.Unanswered++
			m.Unanswered++
			sample(&m.Samples, fmt.Sprintf("call %d to %s: no HTTP answer: %s", c.N, c.ID, c.Err))
		}
	}
	m.Latency = lat.Summary()
	seen := map[int64]int{}
	for _, c := range led.Calls {
		d, ok := byN[c.N]
		switch {
		case c.Bad != "":
			m.Misrouted++
			sample(&m.Samples, fmt.Sprintf("device %d got %s", c.Dev, c.Bad))
		case !ok:
			m.Foreign++
			continue
		case d.Dev != c.Dev:
			m.Misrouted++
			sample(&m.Samples, fmt.Sprintf("call %d for %s reached device %d", c.N, d.ID, c.Dev))
		}
		if seen[c.N]++; seen[c.N] == 2 {
			m.Duplicated++
			sample(&m.Samples, fmt.Sprintf("call %d to %s delivered more than once", c.N, d.ID))
		}
	}
	for _, row := range rows {
		m.Expect = append(m.Expect, *row)
	}
	sort.Slice(m.Expect, func(i, j int) bool {
		if m.Expect[i].Expect != m.Expect[j].Expect {
			return m.Expect[i].Expect < m.Expect[j].Expect
		}
		return m.Expect[i].Why < m.Expect[j].Why
	})
	fl.add(int64(m.Unanswered), "direct method calls got no HTTP answer from the hub (%v)", m.Samples)
	for _, row := range m.Expect {
		if miss := row.Calls - row.Matched - row.Unanswered; miss > 0 {
			fl.add(int64(miss), "of %d direct method calls expected %s (%s) came back otherwise: %v", row.Calls, row.Expect, row.Why, row.Got)
		}
	}
	fl.add(int64(m.Misrouted), "direct method calls or answers reached the wrong device or call (%v)", m.Samples)
	fl.add(int64(m.Duplicated), "direct method calls delivered more than once")
	return m
}

func checkDesired(led *TwinLedger, updates []DesiredRecord, x spanIndex, paired map[int32]bool, fl *failures) DesiredReport {
	d := DesiredReport{Sent: len(updates), Pushes: len(led.Pushes), FailedBy: map[string]int{}}
	byN := map[int64][]PushSeen{}
	for _, p := range led.Pushes {
		switch {
		case p.For != "":
			d.Misrouted++
			sample(&d.Samples, fmt.Sprintf("device %d got update %d for %s", p.Dev, p.N, p.For))
			continue
		case p.Bad != "":
			d.BadPushes++
			sample(&d.Samples, fmt.Sprintf("device %d: %s", p.Dev, p.Bad))
			continue
		}
		byN[p.N] = append(byN[p.N], p)
	}
	known := map[int64]bool{}
	var lat Latency
	for _, u := range updates {
		known[u.N] = true
		if u.Version == 0 {
			d.Failed++
			k := strconv.Itoa(u.Status)
			if u.Err != "" {
				k = "error: " + u.Err
			}
			d.FailedBy[k]++
		}
		got := 0
		for _, p := range byN[u.N] {
			if p.Dev != u.Dev {
				continue
			}
			got++
			if got == 1 {
				lat.Add(time.Duration(p.At - u.T0))
			}
			if u.Version != 0 && p.Version != u.Version {
				d.WrongVersion++
				sample(&d.Samples, fmt.Sprintf("update %d to device %d answered version %d, pushed as %d", u.N, u.Dev, u.Version, p.Version))
			}
		}
		if got > 1 {
			d.Duplicated += got - 1
		}
		span, covered := x.covering(SpanDesired, u.Dev, u.T0, u.T1+int64(pushGrace))
		if u.Version != 0 && !paired[u.Dev] && covered {
			d.Required++
			if span.Kept {
				d.RequiredKept++
			}
			if got > 0 {
				d.RequiredReceived++
				if span.Kept {
					d.ReceivedKept++
				}
			} else {
				d.Missing++
				sample(&d.Samples, fmt.Sprintf("update %d (version %d) to device %d, ready throughout, never pushed", u.N, u.Version, u.Dev))
			}
		} else {
			d.Optional++
			if got > 0 {
				d.OptionalReceived++
			}
		}
	}
	for n, ps := range byN {
		if !known[n] {
			d.Foreign += len(ps)
		}
	}
	d.Latency = lat.Summary()
	fl.add(int64(d.Missing), "desired updates not pushed to a device ready for them throughout (%v)", d.Samples)
	fl.add(int64(d.Misrouted), "desired pushes reached the wrong device")
	fl.add(int64(d.BadPushes), "desired pushes were malformed")
	fl.add(int64(d.WrongVersion), "desired pushes carried another version than the update's answer")
	fl.add(int64(d.Duplicated), "desired pushes arrived more than once")
	fl.add(int64(d.Failed), "desired updates failed at the REST API: %v", d.FailedBy)
	return d
}
