package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/tether-hub/tether/internal/presence"
)

func fullEvent() presence.ConnectionEvent {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	return presence.ConnectionEvent{
		ID: "thermo-1/00A5", Kind: presence.Disconnected, Time: t0, Hub: "myhub.azure-devices.net",
		DeviceID: "thermo-1", ModuleID: "m1", Sequence: "00A5", Reason: presence.ReasonTokenExpired,
		Result: presence.ResultUnauthorized, Detail: "token expired at 2025-06-01T12:00:00Z",
		Protocol: "MQTT-WS", ProtocolVersion: 4, MaskedIP: "24.9.142.XXX",
		SDKVersion: "azure-iot-device/1.18.3 (node v20.11.0; Linux; x64)", AuthType: "policy:iothubowner",
		SessionID: "s-42", ConnectedAt: t0.Add(-time.Hour), DurationMs: 3_600_000,
		TokenExpiry: t0.Add(-time.Second), CleanSession: true, KeepAliveSeconds: 180,
		TokenRenewal: true, RenewalOf: "009F",
	}
}

// TestDecodeKnowsEveryField: every field presence writes is on the fast
// path. When this fails, presence.ConnectionEvent has a field
// eventDecoder does not know; decoding stays correct (such events go
// through json.Unmarshal) but slow until eventDecoder learns it.
func TestDecodeKnowsEveryField(t *testing.T) {
	typ := reflect.TypeFor[presence.ConnectionEvent]()
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue // never serialised
		}
		if name == "" {
			name = f.Name
		}
		if !slices.Contains(eventKeys, name) {
			t.Errorf("ConnectionEvent.%s (%q) is unknown to the fast decoder", f.Name, name)
		}
	}
	res := reflect.TypeFor[presence.Result]()
	if n := res.NumField(); n != 2 {
		t.Errorf("presence.Result has %d fields; the fast decoder knows Type and Description", n)
	}
}

// TestDecodeFastPath: what presence writes takes the fast path and gives
// json.Unmarshal's result.
func TestDecodeFastPath(t *testing.T) {
	full := fullEvent()
	refused := presence.ConnectionEvent{ID: "r", Kind: presence.Refused, Time: full.Time, Reason: presence.ReasonAuthFailed,
		AuthFailure: presence.AuthTokenExpired, Result: presence.ResultUnauthorized}
	for _, e := range []presence.ConnectionEvent{full, {}, refused} {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var got presence.ConnectionEvent
		if d := newEventDecoder(data); !d.event(&got) {
			t.Fatalf("the fast path gave up on %s", data)
		}
		var want presence.ConnectionEvent
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("fast path:\n got %+v\nwant %+v", got, want)
		}
		var sum summaryJSON
		d := eventDecoder{b: data}
		if _, ok := d.summary(&sum); !ok {
			t.Fatalf("the summary's fast path gave up on %s", data)
		}
	}
}

// FuzzDecodeConnectionEvent: for any input, parseConnectionEvent returns
// what json.Unmarshal returns, and when the fast path takes the input,
// json.Unmarshal accepts it and agrees; the same for parseSummary; and
// an event that decodes has the summary of its fields.
func FuzzDecodeConnectionEvent(f *testing.F) {
	full, _ := json.Marshal(fullEvent())
	f.Add(full)
	f.Add([]byte(`{}`))
	f.Add([]byte(` {"id":"a","kind":"connected","time":"2025-06-01T12:00:00+02:00","durationMs":-0,"keepAlive":65535,"protocolVersion":255} `))
	f.Add([]byte(`{"id":"a\u00e9","ID":"b","result":{"Type":"1","Description":"x","type":"y"},"durationMs":1.5}`))
	f.Add([]byte(`{"time":null,"keepAlive":65536,"cleanSession":true,"extra":[1,2]}`))
	f.Add([]byte(`{"id":"a",}`))
	f.Add([]byte(`{"id":"a"} x`))
	f.Add([]byte(`{"kind":"refused","reason":"auth-failed","detail":"device 'd' is disabled","hub":7,"cleanSession":"x"}`))
	f.Add([]byte(`{"kind":"refused","reason":"auth-failed","authFailure":"wrong-hub","KIND":"connected"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var want presence.ConnectionEvent
		wantErr := json.Unmarshal(data, &want)
		for _, shared := range []bool{false, true} {
			got, err := parseConnectionEvent(bytes.Clone(data), shared)
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("%q (shared %v): error %v, json.Unmarshal's %v", data, shared, err, wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("%q (shared %v):\n got %+v\nwant %+v", data, shared, got, want)
			}
		}
		var fast presence.ConnectionEvent
		if d := newEventDecoder(data); d.event(&fast) {
			if wantErr != nil {
				t.Fatalf("%q: the fast path accepted what json.Unmarshal rejects: %v", data, wantErr)
			}
			if !reflect.DeepEqual(fast, want) {
				t.Fatalf("%q: fast path\n got %+v\nwant %+v", data, fast, want)
			}
		}

		var wantSum summaryJSON
		wantSumErr := json.Unmarshal(data, &wantSum)
		if wantSumErr == nil && needsAuthFailure(wantSum.Kind, wantSum.Reason, wantSum.AuthFailure) {
			wantSum.AuthFailure = legacyAuthFailure([]byte(wantSum.Detail))
		}
		sum, sumErr := parseSummary(data)
		if (sumErr == nil) != (wantSumErr == nil) {
			t.Fatalf("%q: summary error %v, json.Unmarshal's %v", data, sumErr, wantSumErr)
		}
		if sumErr == nil {
			sum.Detail = wantSum.Detail // the fast path does not keep it
			if !reflect.DeepEqual(sum, wantSum) {
				t.Fatalf("%q: summary\n got %+v\nwant %+v", data, sum, wantSum)
			}
		}

		ev, evErr := DecodeConnectionEvent(data)
		s, sErr := DecodeConnectionSummary(data)
		if evErr == nil {
			if sErr != nil {
				t.Fatalf("%q: the event decodes, its summary does not: %v", data, sErr)
			}
			if want := (ConnectionSummary{Kind: ev.Kind, Time: ev.Time, Reason: ev.Reason, Result: ev.Result,
				Protocol: ev.Protocol, AuthFailure: ev.AuthFailure, TokenRenewal: ev.TokenRenewal}); !reflect.DeepEqual(s, want) {
				t.Fatalf("%q: summary\n got %+v\nwant %+v", data, s, want)
			}
		} else if !errors.Is(evErr, ErrMalformed) {
			t.Fatalf("%q: error %v does not wrap ErrMalformed", data, evErr)
		}
	})
}

// TestDecodeSharedUsesThePayload: the shared decode gives the same event
// as the copying one, its strings inside the payload's own memory, and
// one allocation fewer (the copy).
func TestDecodeSharedUsesThePayload(t *testing.T) {
	data, err := EncodeConnectionEvent(fullEvent())
	if err != nil {
		t.Fatal(err)
	}
	want, err := DecodeConnectionEvent(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeConnectionEventShared(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("shared decode:\n got %+v\nwant %+v", got, want)
	}
	inData := func(s string) bool {
		p, lo := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(&data[0]))
		return p >= lo && p < lo+uintptr(len(data))
	}
	if !inData(got.ID) || !inData(got.DeviceID) || inData(want.ID) {
		t.Fatalf("shared decode's strings in the payload: id %v, deviceId %v; copying decode's id %v", inData(got.ID), inData(got.DeviceID), inData(want.ID))
	}
	copied := testing.AllocsPerRun(200, func() { _, _ = DecodeConnectionEvent(data) })
	shared := testing.AllocsPerRun(200, func() { _, _ = DecodeConnectionEventShared(data) })
	if shared != copied-1 {
		t.Fatalf("allocations per decode: shared %v, copying %v; want one fewer", shared, copied)
	}
	if _, err := DecodeConnectionEventShared(nil); err == nil {
		t.Fatal("an empty payload decoded")
	}
}
