package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-hub/tether/internal/hubclient"
)

// wantEvents is what encoding/json (the receiver's decoder before
// scanBatch) makes of a batch, in scanBatch's terms.
func wantEvents(t *testing.T, b []byte) []hookEvent {
	t.Helper()
	var batch []hubclient.Event
	if err := json.Unmarshal(b, &batch); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	var out []hookEvent
	for _, e := range batch {
		out = append(out, hookEvent{eventType: []byte(e.EventType), eventTime: e.EventTime, deviceID: []byte(e.Data.DeviceID),
			seq: []byte(e.Data.Info.SequenceNumber), reason: []byte(e.Data.Tether.Reason), validationCode: []byte(e.Data.ValidationCode)})
	}
	return out
}

func sameEvents(t *testing.T, got, want []hookEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if string(g.eventType) != string(w.eventType) || !g.eventTime.Equal(w.eventTime) || string(g.deviceID) != string(w.deviceID) ||
			string(g.seq) != string(w.seq) || string(g.reason) != string(w.reason) || string(g.validationCode) != string(w.validationCode) {
			t.Errorf("event %d: got %+v, want %+v", i, g, w)
		}
	}
}

// The hub's own Event Grid events (the events package's golden files) and
// hand-made batches with escapes, nulls, nesting and whitespace give the
// same fields as encoding/json.
func TestScanBatchMatchesEncodingJSON(t *testing.T) {
	var golden []string
	for _, name := range []string{"connected", "disconnected", "created", "telemetry-json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "internal", "events", "testdata", "events", name+".eventgrid.json"))
		if err != nil {
			t.Fatal(err)
		}
		golden = append(golden, string(b))
	}
	cases := []string{
		"[" + golden[0] + "]",
		"[" + strings.Join(golden, ",") + "]",
		`[{"eventType":"Microsoft.Devices.DeviceDisconnected","eventTime":"2026-12-07T15:00:00.123456789Z","data":{"deviceId":"lat-\u0031\/x","tether":{"reason":"cl\"ient","n":[1,-2.5e+3,true,false,null,{"a":[]}]},"deviceConnectionStateEventInfo":{"sequenceNumber":"00ff"}}}]`,
		` [ { "data" : null , "eventType" : null } , {"eventTime":"2026-12-07T15:00:00+01:00","data":{"deviceConnectionStateEventInfo":null,"tether":null,"validationCode":"c0de"}} ] `,
		`[{"eventType":"a","eventType":"b","data":{"deviceId":"x"},"data":{"hubName":"h"}}]`, // last wins, as in encoding/json
		`[{"eventTime":"2026-12-07T15:00:00Z","eventTime":null,"data":{"tether":{"reason":"x"},"tether":null}}]`,
		`[]`,
	}
	for _, c := range cases {
		got, err := scanBatch([]byte(c), nil)
		if err != nil {
			t.Fatalf("%.80s: %v", c, err)
		}
		sameEvents(t, got, wantEvents(t, []byte(c)))
	}
}

// What is not valid JSON, or not an array of event objects with string
// fields where the comparator reads them, is refused.
func TestScanBatchRefuses(t *testing.T) {
	for _, c := range []string{
		``, `{}`, `[`, `[{]`, `[{"eventType":"a"}`, `[{"eventType":"a"},]`, `[{"eventType":"a"}] x`, `[1]`, `["e"]`,
		`[{"eventType":5}]`, `[{"data":{"deviceId":true}}]`, `[{"data":[]}]`, `[{"eventTime":"yesterday"}]`,
		`[{"a":01}]`, `[{"a":1.}]`, `[{"a":1e}]`, `[{"a":-}]`, `[{"a":tru}]`, `[{"a":"\x"}]`, `[{"a":"\u12"}]`,
		"[{\"a\":\"tab\there\"}]", `[{"a" 1}]`, `[{"a":1 "b":2}]`, `[{'a':1}]`, `[{"a":"unterminated}]`,
		strings.Repeat("[", 20000) + strings.Repeat("]", 20000),
	} {
		if _, err := scanBatch([]byte(c), nil); err == nil {
			t.Errorf("%.60q: accepted", c)
		}
		var anyv []hubclient.Event
		if json.Unmarshal([]byte(c), &anyv) == nil {
			t.Errorf("%.60q: encoding/json accepts it, so the test case is wrong", c)
		}
	}
}

// Whatever scanBatch accepts is valid JSON, and it never panics.
func FuzzScanBatch(f *testing.F) {
	f.Add([]byte(`[{"eventType":"Microsoft.Devices.DeviceConnected","eventTime":"2026-12-07T15:00:00Z","data":{"deviceId":"lat-1","deviceConnectionStateEventInfo":{"sequenceNumber":"01"},"tether":{"reason":"client"}}}]`))
	f.Add([]byte(`[{"a":[1,2,{"b":null}],"data":{"x":"\u00e9\n"}}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := scanBatch(b, nil); err == nil && !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
	})
}
