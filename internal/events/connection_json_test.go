package events

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/tether-hub/tether/internal/jsonenc/jsonenctest"
)

func dataBoth(t testing.TB, d ConnectionData) (got, want []byte) {
	t.Helper()
	want, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return appendConnectionData(nil, &d), want
}

// TestConnectionDataMatchesMarshal: the hand-written data is what
// encoding/json writes, for the hub's events and odd strings.
func TestConnectionDataMatchesMarshal(t *testing.T) {
	for _, d := range []ConnectionData{
		{},
		{DeviceID: "d", Tether: &Extension{}},
		{DeviceID: "d", Tether: &Extension{Detail: "x"}},
		{DeviceID: "d", Tether: &Extension{ProtocolVersion: 4}},
		{DeviceID: "a<b>&\"\u2028é", HubName: "h", ModuleID: "m", Tether: &Extension{Reason: "client", TokenRenewal: true, ConnectDurationMs: -1}},
	} {
		if got, want := dataBoth(t, d); !bytes.Equal(got, want) {
			t.Errorf("differ:\n got %s\nwant %s", got, want)
		}
	}
	for _, ce := range []func() Event{
		func() Event { e, _ := FromConnection(testResource, connectedEvent(), Marks{}); return e },
		func() Event {
			e, _ := FromConnection(testResource, disconnectedEvent(), Marks{TokenRenewal: true})
			return e
		},
	} {
		e := ce()
		var d ConnectionData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		if want, _ := json.Marshal(d); !bytes.Equal(e.Data, want) {
			t.Errorf("FromConnection data\n got %s\nwant %s", e.Data, want)
		}
	}
}

// TestConnectionDataCovers sets every field non-zero: a field added to
// ConnectionData, StateEventInfo or Extension and not to the encoder
// fails here.
func TestConnectionDataCovers(t *testing.T) {
	var d ConnectionData
	if err := jsonenctest.Fill(&d); err != nil {
		t.Fatal(err)
	}
	if got, want := dataBoth(t, d); !bytes.Equal(got, want) {
		t.Errorf("differ:\n got %s\nwant %s", got, want)
	}
}

func FuzzConnectionData(f *testing.F) {
	f.Add("LogicAppTestDevice", "client", "no packet for 90s", int64(41000), byte(4), true, false)
	f.Add("", "", "", int64(0), byte(0), false, true)
	f.Add("<&>", "\x00", "\xff", int64(-1), byte(255), true, true)
	f.Fuzz(func(t *testing.T, dev, reason, detail string, dur int64, ver byte, renewal, noExt bool) {
		d := ConnectionData{DeviceID: dev, HubName: reason, ModuleID: detail,
			DeviceConnectionStateEventInfo: StateEventInfo{SequenceNumber: dev + reason}}
		if !noExt {
			d.Tether = &Extension{Reason: reason, ResultType: dev, Detail: detail, ConnectDurationMs: dur,
				ProtocolVersion: ver, TokenRenewal: renewal, SessionID: detail}
		}
		if got, want := dataBoth(t, d); !bytes.Equal(got, want) {
			t.Errorf("differ:\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkFromConnection(b *testing.B) {
	ce := disconnectedEvent()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := FromConnection(testResource, ce, Marks{}); !ok {
			b.Fatal("no event")
		}
	}
}
