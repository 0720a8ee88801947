package connlog

import (
	"testing"
)

// FuzzPropertiesJSON: the hand-written properties_s writers produce what
// encoding/json produces (marshalProperties), for any field values.
func FuzzPropertiesJSON(f *testing.F) {
	f.Add("thermo-1", "Mqtt", "24.9.142.XXX", "", "azure-iot-device/1.18.3 (node v20.11.0; Linux; x64)", "s-42", "404104", int64(3600000), byte(4), uint16(180), true)
	f.Add("ü \"quoted\" <&> 🚀", "a\nb\tc\x00\x1f\x7f", "\u2028\u2029", "\xff\xfe bad utf8 \xe2\x82", `\\`, "", "", int64(-1), byte(0), uint16(0), false)
	f.Add("", "", "", "", "", "", "", int64(0), byte(255), uint16(65535), false)
	f.Fuzz(func(t *testing.T, a, b, c, d, e, g, code string, n int64, v byte, ka uint16, ptrs bool) {
		cp := ConnectionProperties{
			DeviceID: a, Protocol: b, MaskedIP: c, ErrorMessage: d, SDKVersion: e,
			ModuleID: g, SessionID: a, SequenceNumber: code, Reason: b,
			ConnectDurationMs: n, IdleMs: int64(ka) * 3, TokenExpiry: d, ProtocolVersion: v, KeepAlive: ka,
		}
		ip := IdentityProperties{DeviceID: a, Caller: b, Status: c, StatusReason: d, GenerationID: e, ETag: g, PrimaryKey: code, SecondaryKey: a}
		if ptrs {
			cp.AuthType, cp.StatusCode, ip.MaskedIP = &e, &code, &c
		}
		if got, want := string(cp.appendJSON(nil)), marshalProperties(cp); got != want {
			t.Errorf("ConnectionProperties %+v:\n got %s\nwant %s", cp, got, want)
		}
		if got, want := string(ip.appendJSON(nil)), marshalProperties(ip); got != want {
			t.Errorf("IdentityProperties %+v:\n got %s\nwant %s", ip, got, want)
		}
		var ptr *string
		if ptrs {
			ptr = &code
		}
		checkJSON(t, &D2CTwinProperties{DeviceID: a, Protocol: b, AuthType: ptr, SDKVersion: e, MaskedIP: c,
			MessageSize: code, StatusCode: ptr, Status: int(n), ErrorMessage: d})
		checkJSON(t, &C2DTwinProperties{DeviceID: a, SDKVersion: e, MessageSize: g, StatusCode: ptr,
			Caller: b, Status: int(ka), ErrorMessage: d})
		checkJSON(t, &TwinQueryProperties{Query: d, SDKVersion: e, MessageSize: code, PageSize: g, Continuation: b,
			ResultSize: c, StatusCode: ptr, Caller: a, ResultCount: int(v), Status: int(n), ErrorMessage: e})
		checkJSON(t, &DirectMethodProperties{DeviceID: a, RequestSize: n, ResponseSize: int64(ka), SDKVersion: e,
			StatusCode: ptr, MethodName: g, Caller: b, Status: int(v), ErrorMessage: d})
	})
}

// checkJSON compares p's hand-written JSON with encoding/json's.
func checkJSON[P interface{ appendJSON([]byte) []byte }](t *testing.T, p P) {
	t.Helper()
	if got, want := string(p.appendJSON(nil)), marshalProperties(p); got != want {
		t.Errorf("%T %+v:\n got %s\nwant %s", p, p, got, want)
	}
}
