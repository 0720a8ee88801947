package journal

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/telemetry"
)

func TestTelemetryRoundTrip(t *testing.T) {
	for _, m := range []telemetry.Message{
		{DeviceID: "thermo.1", EnqueuedTime: time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC), Payload: []byte(`{"t":21}`),
			Properties: map[string]string{"temp": "high", "a b": "é"}, SystemProperties: map[string]string{"message-id": "m1"}},
		{DeviceID: "d", EnqueuedTime: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)},
	} {
		msg := TelemetryMsg(m)
		got, err := DecodeTelemetry(msg.Subject, msg.Header, msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, m)
		}
	}
}

// TestTelemetryStoredHeaders: the headers the journal holds today (these
// bytes) decode, and encoding gives them back.
func TestTelemetryStoredHeaders(t *testing.T) {
	stored := map[string]string{
		"Tether-Enqueued-Time":     "2025-06-01T12:00:00.123456789Z",
		"Tether-Device-Id":         "thermo.1",
		"Tether-Properties":        `{"a b":"é","temp":"high"}`,
		"Tether-System-Properties": `{"content-type":"application/json","message-id":"m1"}`,
	}
	h := nats.Header{}
	for k, v := range stored {
		h.Set(k, v)
	}
	m, err := DecodeTelemetry("tether.telemetry.thermo%2E1", h, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	back := TelemetryHeader(m)
	if len(back) != len(stored) {
		t.Errorf("encoded %d headers, stored %d", len(back), len(stored))
	}
	for k, v := range stored {
		if got := back.Get(k); got != v {
			t.Errorf("%s: encoded %q, stored %q", k, got, v)
		}
	}
	if TelemetrySubject(m.DeviceID) != "tether.telemetry.thermo%2E1" {
		t.Errorf("subject %s", TelemetrySubject(m.DeviceID))
	}
}

func TestDecodeTelemetryMalformed(t *testing.T) {
	h := nats.Header{}
	h.Set(HeaderEnqueuedTime, "yesterday")
	h.Set(HeaderProperties, `{"n":1}`)
	h.Set(HeaderSystemProperties, `{"message-id":"m1"}`)
	m, err := DecodeTelemetry("tether.telemetry.dev%2E1", h, []byte("payload"))
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("error %v, want ErrMalformed", err)
	}
	// What could be read is still there.
	if m.DeviceID != "dev.1" || string(m.Payload) != "payload" || m.SystemProperties["message-id"] != "m1" ||
		!m.EnqueuedTime.IsZero() || m.Properties != nil {
		t.Errorf("partial message %+v", m)
	}
	if _, err := DecodeTelemetry("elsewhere", nats.Header{}, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("no device, no time: error %v", err)
	}
	if _, ok := TelemetryTime(nil); ok {
		t.Error("a time in no header")
	}
}

func FuzzDecodeTelemetry(f *testing.F) {
	f.Add("tether.telemetry.d%2E1", "2025-06-01T12:00:00.123456789Z", "", `{"a":"b"}`, `{"message-id":"m"}`)
	f.Add("tether.telemetry.%", "2025-06-01T12:00:00+02:00", "dev", `{"a":1}`, `null`)
	f.Add("x", "", "", `{`, `[]`)
	f.Fuzz(func(t *testing.T, subject, enqueued, device, props, sys string) {
		h := nats.Header{}
		for k, v := range map[string]string{HeaderEnqueuedTime: enqueued, HeaderDeviceID: device,
			HeaderProperties: props, HeaderSystemProperties: sys} {
			if v != "" {
				h.Set(k, v)
			}
		}
		m, err := DecodeTelemetry(subject, h, []byte("p"))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// What decodes encodes to a message that decodes to the same.
		msg := TelemetryMsg(m)
		again, err := DecodeTelemetry(msg.Subject, msg.Header, msg.Data)
		if err != nil {
			t.Fatalf("re-decoding %+v: %v", m, err)
		}
		if !again.EnqueuedTime.Equal(m.EnqueuedTime) || again.DeviceID != m.DeviceID ||
			len(again.Properties) != len(m.Properties) || len(again.SystemProperties) != len(m.SystemProperties) {
			t.Fatalf("re-decoded %+v, want %+v", again, m)
		}
	})
}
