package sim

import (
	"strings"
	"testing"
	"time"
)

func sec(s float64) int64 { return int64(s * float64(time.Second)) }

// twinFixture is a small world: device 0 ready from 1 s to 100 s, device
// 1 ready from 1 s to 10 s and then gone, device 2 one of a duplicate-id
// pair, and a driver whose calls and updates all came back as they must.
func twinFixture() (*TwinLedger, []CallRecord, []DesiredRecord) {
	led := &TwinLedger{
		Spans: []Span{
			{Dev: 0, Kind: SpanOnline, From: 0, To: sec(100)},
			{Dev: 0, Kind: SpanMethods, From: sec(1), To: sec(100)},
			{Dev: 0, Kind: SpanDesired, From: sec(1), To: sec(100), Kept: true},
			{Dev: 1, Kind: SpanOnline, From: 0, To: sec(10)},
			{Dev: 1, Kind: SpanMethods, From: sec(1), To: sec(10)},
			{Dev: 1, Kind: SpanDesired, From: sec(1), To: sec(10)},
		},
		Paired:   []int32{2},
		Get:      RequestStats{Sent: 3, OK: 3},
		Reported: RequestStats{Sent: 5, OK: 5},
	}
	calls := []CallRecord{
		{Dev: 0, ID: "s-0", N: 1, Method: methodEcho, T0: sec(5), T1: sec(5.01), Status: 200, DevStatus: 200},
		{Dev: 0, ID: "s-0", N: 2, Method: methodUnhandled, T0: sec(6), T1: sec(11), Status: 504, Number: 504101},
		{Dev: 1, ID: "s-1", N: 3, Method: methodEcho, T0: sec(50), T1: sec(50.01), Status: 404, Number: 404103},
		{Dev: 1, ID: "s-1", N: 4, Method: methodEcho, T0: sec(9.5), T1: sec(10.5), Status: 504, Number: 504101},
		{Dev: -1, ID: "s-offline-0", N: 5, Method: methodEcho, T0: sec(7), T1: sec(7.01), Status: 404, Number: 404103},
		{Dev: 2, ID: "s-2", N: 6, Method: methodEcho, T0: sec(7), T1: sec(7.01), Status: 200, DevStatus: 200},
	}
	led.Calls = []CallSeen{
		{Dev: 0, N: 1, Method: methodEcho, At: sec(5.005)},
		{Dev: 0, N: 2, Method: methodUnhandled, At: sec(6.005)},
		{Dev: 2, N: 6, Method: methodEcho, At: sec(7.005)},
	}
	updates := []DesiredRecord{
		{Dev: 0, N: 10, T0: sec(30), T1: sec(30.01), Version: 5, Status: 200},
		{Dev: 1, N: 11, T0: sec(50), T1: sec(50.01), Version: 3, Status: 200}, // device gone: optional
		{Dev: 1, N: 12, T0: sec(9), T1: sec(9.01), Version: 2, Status: 200},   // within the push grace of the end: optional
	}
	led.Pushes = []PushSeen{{Dev: 0, N: 10, Version: 5, At: sec(30.005)}}
	return led, calls, updates
}

func TestCheckTwinsClean(t *testing.T) {
	led, calls, updates := twinFixture()
	r := CheckTwins(led, calls, updates, 0)
	if !r.OK() {
		t.Fatalf("failures: %v", r.Failures)
	}
	want := map[[2]string]int{
		{OutcomeOK, "echo, device ready throughout"}:                             1,
		{OutcomeTimeout, "no handler, device ready throughout"}:                  1,
		{OutcomeNotOnline, "device offline throughout"}:                          1,
		{OutcomeNotOnline, "the device never connects"}:                          1,
		{OutcomeAny, "the device connected, left or subscribed during the call"}: 1,
		{OutcomeAny, "duplicate-id pair: either copy may hold the session"}:      1,
	}
	for _, row := range r.Methods.Expect {
		if want[[2]string{row.Expect, row.Why}] != row.Calls || row.Matched != row.Calls {
			t.Errorf("row %+v", row)
		}
	}
	if len(r.Methods.Expect) != len(want) {
		t.Errorf("rows %+v", r.Methods.Expect)
	}
	d := r.Desired
	if d.Required != 1 || d.RequiredReceived != 1 || d.RequiredKept != 1 || d.ReceivedKept != 1 || d.Optional != 2 || d.Missing != 0 {
		t.Errorf("desired %+v", d)
	}
	if r.Methods.Latency.Count != 2 || r.Desired.Latency.Count != 1 {
		t.Errorf("latencies: methods %+v desired %+v", r.Methods.Latency, r.Desired.Latency)
	}
}

// Every way the hub can lose, misroute or mis-answer something fails the
// check, and says so.
func TestCheckTwinsFailures(t *testing.T) {
	cases := []struct {
		name string
		mut  func(led *TwinLedger, calls *[]CallRecord, updates *[]DesiredRecord)
		want string
	}{
		{"echo to a ready device timed out", func(_ *TwinLedger, c *[]CallRecord, _ *[]DesiredRecord) {
			*c = append(*c, CallRecord{Dev: 0, ID: "s-0", N: 20, Method: methodEcho, T0: sec(20), T1: sec(25), Status: 504, Number: 504101})
		}, "expected 200 (echo, device ready throughout)"},
		{"answer of another call", func(_ *TwinLedger, c *[]CallRecord, _ *[]DesiredRecord) {
			*c = append(*c, CallRecord{Dev: 0, ID: "s-0", N: 21, Method: methodEcho, T0: sec(21), T1: sec(21.01), Status: 200, Bad: "call 21 to s-0 answered with {…7…}"})
		}, "wrong device or call"},
		{"offline device answered", func(_ *TwinLedger, c *[]CallRecord, _ *[]DesiredRecord) {
			*c = append(*c, CallRecord{Dev: 1, ID: "s-1", N: 22, Method: methodEcho, T0: sec(60), T1: sec(60.01), Status: 200})
		}, "expected 404103 (device offline throughout)"},
		{"unhandled method answered", func(_ *TwinLedger, c *[]CallRecord, _ *[]DesiredRecord) {
			*c = append(*c, CallRecord{Dev: 1, ID: "s-1", N: 23, Method: methodUnhandled, T0: sec(9.5), T1: sec(10.5), Status: 200})
		}, "expected any"},
		{"throttled", func(_ *TwinLedger, c *[]CallRecord, _ *[]DesiredRecord) {
			*c = append(*c, CallRecord{Dev: 1, ID: "s-1", N: 24, Method: methodEcho, T0: sec(9.5), T1: sec(9.6), Status: 429, Number: 429001})
		}, "429 429001"},
		{"call delivered to another device", func(l *TwinLedger, _ *[]CallRecord, _ *[]DesiredRecord) {
			l.Calls = append(l.Calls, CallSeen{Dev: 1, N: 1, Method: methodEcho, At: sec(5.005)})
		}, "call 1 for s-0 reached device 1"},
		{"call delivered twice", func(l *TwinLedger, _ *[]CallRecord, _ *[]DesiredRecord) {
			l.Calls = append(l.Calls, CallSeen{Dev: 0, N: 1, Method: methodEcho, At: sec(5.006)})
		}, "delivered more than once"},
		{"desired push missing", func(_ *TwinLedger, _ *[]CallRecord, u *[]DesiredRecord) {
			*u = append(*u, DesiredRecord{Dev: 0, N: 30, T0: sec(40), T1: sec(40.01), Version: 6, Status: 200})
		}, "never pushed"},
		{"desired push to the wrong device", func(l *TwinLedger, _ *[]CallRecord, _ *[]DesiredRecord) {
			l.Pushes = append(l.Pushes, PushSeen{Dev: 1, N: 10, Version: 5, At: sec(30.005), For: "s-0"})
		}, "reached the wrong device"},
		{"desired push with another version", func(l *TwinLedger, _ *[]CallRecord, _ *[]DesiredRecord) {
			l.Pushes[0].Version = 4
		}, "another version"},
		{"desired push twice", func(l *TwinLedger, _ *[]CallRecord, _ *[]DesiredRecord) {
			l.Pushes = append(l.Pushes, l.Pushes[0])
		}, "more than once"},
		{"desired update refused", func(_ *TwinLedger, _ *[]CallRecord, u *[]DesiredRecord) {
			*u = append(*u, DesiredRecord{Dev: 0, N: 31, T0: sec(41), T1: sec(41.01), Status: 500})
		}, "failed at the REST API"},
		{"twin GET unanswered", func(l *TwinLedger, _ *[]CallRecord, _ *[]DesiredRecord) {
			l.Get.TimedOut = 1
		}, "twin GETs unanswered"},
		{"answer to a $rid never asked", func(l *TwinLedger, _ *[]CallRecord, _ *[]DesiredRecord) {
			l.Reported.Unknown, l.Reported.BadSample = 1, "s-0 got an answer to $rid \"9\""
		}, "reported patches with a $rid"},
		{"reported patch refused", func(l *TwinLedger, _ *[]CallRecord, _ *[]DesiredRecord) {
			l.Reported.Status = map[string]int64{"400": 2}
		}, "2 reported patches answered with status 400"},
	}
	for _, c := range cases {
		led, calls, updates := twinFixture()
		c.mut(led, &calls, &updates)
		r := CheckTwins(led, calls, updates, 0)
		if r.OK() || !strings.Contains(strings.Join(r.Failures, "\n"), c.want) {
			t.Errorf("%s: failures %q; want one saying %q", c.name, r.Failures, c.want)
		}
	}
}

// A call the hub's REST API never answered is its own failure, not a
// wrong outcome.
func TestCheckTwinsUnansweredCall(t *testing.T) {
	led, calls, updates := twinFixture()
	calls = append(calls, CallRecord{Dev: 0, ID: "s-0", N: 40, Method: methodEcho, T0: sec(20), T1: sec(40), Err: "timeout"})
	r := CheckTwins(led, calls, updates, 0)
	if len(r.Failures) != 1 || !strings.Contains(r.Failures[0], "1 direct method calls got no HTTP answer") || r.Methods.Unanswered != 1 {
		t.Errorf("failures %q", r.Failures)
	}
}
