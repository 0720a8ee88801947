package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/presence"
)

func TestConnectionEventRoundTrip(t *testing.T) {
	refused := presence.ConnectionEvent{ID: "r-1", Kind: presence.Refused, Time: fullEvent().Time, DeviceID: "d.1",
		Reason: presence.ReasonAuthFailed, AuthFailure: presence.AuthWrongHub, Result: presence.ResultUnauthorized}
	for _, e := range []presence.ConnectionEvent{fullEvent(), refused, {Kind: presence.Connected}} {
		data, err := EncodeConnectionEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeConnectionEvent(data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("round trip of %s:\n got %+v\nwant %+v", data, got, e)
		}
	}
}

func TestConnectionEventMsg(t *testing.T) {
	var recorded error = errors.New("unset")
	e := fullEvent()
	e.Recorded = func(err error) { recorded = err }
	m := ConnectionEventMsg(e)
	if m.Subject != "tether.conn.thermo-1.disconnected" || m.ID != ConnMsgID(e.ID) {
		t.Errorf("subject %q id %q", m.Subject, m.ID)
	}
	// The payload is appended to the buffer the publisher lends.
	data, err := m.Append([]byte("lent:"))
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := json.Marshal(e); !bytes.Equal(data, append([]byte("lent:"), want...)) {
		t.Errorf("payload %s, want lent:%s", data, want)
	}
	m.Done(nil)
	if recorded != nil {
		t.Error("Done does not reach Recorded")
	}
}

// TestDecodeStoredEvents: events as the journal stored them before this
// codec (testdata, written by json.Marshal of that version's struct) still
// decode, encode back to the same bytes, and a stored auth-failed refusal
// gets its typed cause from its detail.
func TestDecodeStoredEvents(t *testing.T) {
	f, err := os.Open("testdata/connection-events-v1.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []presence.ConnectionEvent
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := sc.Bytes()
		e, err := DecodeConnectionEvent(line)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if e.Kind != presence.Refused { // refusals gain an AuthFailure
			if back, _ := EncodeConnectionEvent(e); !bytes.Equal(back, line) {
				t.Errorf("re-encoded\n%s\nstored\n%s", back, line)
			}
		}
		s, err := DecodeConnectionSummary(line)
		if err != nil {
			t.Fatal(err)
		}
		if s.Kind != e.Kind || !s.Time.Equal(e.Time) || s.Result != e.Result || s.AuthFailure != e.AuthFailure || s.TokenRenewal != e.TokenRenewal {
			t.Errorf("summary %+v of %+v", s, e)
		}
		got = append(got, e)
	}
	if len(got) != 3 {
		t.Fatalf("%d events, want 3", len(got))
	}
	if want := fullEvent(); !reflect.DeepEqual(got[0], want) {
		t.Errorf("stored disconnect:\n got %+v\nwant %+v", got[0], want)
	}
	if got[1].AuthFailure != presence.AuthTokenExpired || got[1].Detail != "SAS token expired: expired at 2025-06-01T11:00:00Z" {
		t.Errorf("stored refusal: %+v", got[1])
	}
	if got[2].AuthFailure != presence.AuthNone || got[2].TokenExpiry != time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC) {
		t.Errorf("stored connect: %+v", got[2])
	}
}

func TestDecodeConnectionEventMalformed(t *testing.T) {
	for _, in := range []string{``, `null x`, `{`, `{"id":`, `[]`, `{"time":"yesterday"}`, `{"keepAlive":70000}`,
		`{"durationMs":"1"}`, `{"result":"401003"}`, "\xff"} {
		_, err := DecodeConnectionEvent([]byte(in))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: error %v, want ErrMalformed", in, err)
		}
		if _, err := DecodeConnectionSummary([]byte(in)); err == nil && in != `{"keepAlive":70000}` && in != `{"durationMs":"1"}` {
			t.Errorf("%q: the summary decoded", in)
		}
	}
}

// An auth-failed refusal keeps the AuthFailure it was stored with and
// gets one from its detail when it has none; other events get none.
func TestLegacyAuthFailure(t *testing.T) {
	for detail, want := range map[string]presence.AuthFailure{
		"SAS token expired: expired at 2026-01-01T00:00:00Z":                 presence.AuthTokenExpired,
		"SAS token signature does not match: the token was not signed":       presence.AuthBadSignature,
		"IotHub 'h' does not contain the specified device 'd'":               presence.AuthDeviceNotFound,
		"device 'd' is disabled":                                             presence.AuthDeviceDisabled,
		"malformed MQTT username: expected {host}/{deviceId}/?api-version=…": presence.AuthBadUsername,
		"something new": presence.AuthOther,
	} {
		e := presence.ConnectionEvent{Kind: presence.Refused, Reason: presence.ReasonAuthFailed, Detail: detail}
		data, _ := json.Marshal(e)
		if got, _ := DecodeConnectionEvent(data); got.AuthFailure != want {
			t.Errorf("%q: event %s, want %s", detail, got.AuthFailure, want)
		}
		if got, _ := DecodeConnectionSummary(data); got.AuthFailure != want {
			t.Errorf("%q: summary %s, want %s", detail, got.AuthFailure, want)
		}
	}
	typed := presence.ConnectionEvent{Kind: presence.Refused, Reason: presence.ReasonAuthFailed,
		AuthFailure: presence.AuthUnknownPolicy, Detail: "SAS token expired"}
	data, _ := json.Marshal(typed)
	if got, _ := DecodeConnectionSummary(data); got.AuthFailure != presence.AuthUnknownPolicy {
		t.Errorf("a stored AuthFailure was replaced by %s", got.AuthFailure)
	}
	other := presence.ConnectionEvent{Kind: presence.Refused, Reason: presence.ReasonConnectTimeout, Detail: "SAS token expired"}
	data, _ = json.Marshal(other)
	if got, _ := DecodeConnectionEvent(data); got.AuthFailure != presence.AuthNone {
		t.Errorf("a connect timeout got AuthFailure %s", got.AuthFailure)
	}
}

// BenchmarkDecodeConnection: what a consumer pays per event, with the
// summary (metrics), the whole event (log, events), and json.Unmarshal of
// the summary fields (metrics before the codec).
func BenchmarkDecodeConnection(b *testing.B) {
	var data [][]byte
	t0 := fullEvent().Time
	for _, e := range []presence.ConnectionEvent{
		{ID: "thermo-1/00A5", Kind: presence.Connected, Time: t0, Hub: "myhub.azure-devices.net", DeviceID: "thermo-1",
			Sequence: "00000000000000000000000000000000000000000000000000000000000000A5", Protocol: "MQTT", ProtocolVersion: 4,
			MaskedIP: "24.9.142.XXX", SDKVersion: "azure-iot-device/1.18.3 (node v20.11.0; Linux; x64)", AuthType: "sas",
			SessionID: "s-42", TokenExpiry: t0.Add(time.Hour), CleanSession: true, KeepAliveSeconds: 180},
		{ID: "thermo-1/00A6", Kind: presence.Disconnected, Time: t0, Hub: "myhub.azure-devices.net", DeviceID: "thermo-1",
			Sequence: "00000000000000000000000000000000000000000000000000000000000000A6", Reason: presence.ReasonNetwork,
			Result: presence.ResultClosedRemotely, Detail: "connection closed without MQTT DISCONNECT", Protocol: "MQTT", ProtocolVersion: 4,
			MaskedIP: "24.9.142.XXX", AuthType: "sas", SessionID: "s-42", ConnectedAt: t0.Add(-time.Hour), DurationMs: 3600000,
			TokenExpiry: t0.Add(time.Hour), KeepAliveSeconds: 180},
		{ID: "r-1", Kind: presence.Refused, Time: t0, Hub: "myhub.azure-devices.net", DeviceID: "thermo-2",
			Reason: presence.ReasonAuthFailed, Result: presence.ResultUnauthorized,
			Detail: "SAS token signature does not match: the token was not signed with this key", Protocol: "MQTT", MaskedIP: "24.9.142.XXX"},
	} {
		b, _ := json.Marshal(e)
		data = append(data, b)
	}
	run := func(name string, decode func([]byte) error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := decode(data[i%len(data)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
	run("summary", func(d []byte) error { _, err := DecodeConnectionSummary(d); return err })
	run("event", func(d []byte) error { _, err := DecodeConnectionEvent(d); return err })
	run("json-summary", func(d []byte) error { var s summaryJSON; return json.Unmarshal(d, &s) })
}

// A refusal that stands for several attempts keeps its count through the
// journal, in the event and in the summary the metrics count.
func TestRefusalCount(t *testing.T) {
	e := presence.ConnectionEvent{ID: "r-2", Kind: presence.Refused, Time: fullEvent().Time, Protocol: "MQTT", MaskedIP: "10.1.2.XXX",
		Reason: presence.ReasonThrottledHub, Result: presence.ResultThrottled, Detail: "the hub takes …", Count: 417}
	data, err := EncodeConnectionEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"count":417`) {
		t.Fatalf("encoded %s", data)
	}
	got, err := DecodeConnectionEvent(data)
	if err != nil || !reflect.DeepEqual(got, e) || got.Attempts() != 417 {
		t.Fatalf("event %+v %v", got, err)
	}
	sum, err := DecodeConnectionSummary(data)
	if err != nil || sum.Count != 417 || sum.Reason != presence.ReasonThrottledHub {
		t.Fatalf("summary %+v %v", sum, err)
	}
	if (presence.ConnectionEvent{}).Attempts() != 1 {
		t.Fatal("an event without a count stands for one attempt")
	}
}
