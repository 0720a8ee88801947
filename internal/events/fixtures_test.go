package events

import (
	"time"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/telemetry"
)

const (
	testHub = "egtesthub1.azure-devices.net"
	seq1    = "000000000000000001D4132452F67CE200000002000000000000000000000001"
	seq2    = "000000000000000001D4132452F67CE200000002000000000000000000000002"
)

var (
	testResource = Resource{SubscriptionID: "5c1a0f3e-1111-2222-3333-444455556666", ResourceGroup: "iot-rg"}
	t0           = time.Date(2018, 6, 2, 19, 17, 44, 438399700, time.UTC)
)

func connectedEvent() presence.ConnectionEvent {
	return presence.ConnectionEvent{
		ID: "LogicAppTestDevice/" + seq1, Kind: presence.Connected, Time: t0, Hub: testHub,
		DeviceID: "LogicAppTestDevice", Sequence: seq1, Protocol: "MQTT", ProtocolVersion: 4,
		SessionID: "8f2d3c4b5a697887a6b5c4d3e2f10011", AuthType: "sas",
		TokenExpiry: t0.Add(time.Hour),
	}
}

func disconnectedEvent() presence.ConnectionEvent {
	return presence.ConnectionEvent{
		ID: "LogicAppTestDevice/" + seq2, Kind: presence.Disconnected, Time: t0.Add(41 * time.Second), Hub: testHub,
		DeviceID: "LogicAppTestDevice", Sequence: seq2, Reason: presence.ReasonKeepAlive,
		Result: presence.ResultClosedRemotely, Detail: "no packet for 90s (keep-alive 60s)",
		Protocol: "MQTT-WS", ProtocolVersion: 5, SessionID: "8f2d3c4b5a697887a6b5c4d3e2f10011",
		ConnectedAt: t0, DurationMs: 41000,
	}
}

func refusedEvent() presence.ConnectionEvent {
	return presence.ConnectionEvent{
		ID: "0123456789abcdef0123456789abcdef", Kind: presence.Refused, Time: t0, Hub: testHub,
		DeviceID: "LogicAppTestDevice", Reason: presence.ReasonAuthFailed, Result: presence.ResultUnauthorized,
	}
}

func testDevice() registry.Device {
	return registry.Device{
		DeviceID: "LogicAppTestDevice", GenerationID: "639000000000001234", ETag: "ODgxNTgwOA==",
		Status:         registry.Enabled,
		Authentication: registry.Authentication{Type: "sas"},
	}
}

func change(op registry.Op) registry.Change {
	return registry.Change{
		ID: "change-" + string(op), Op: op, Time: time.Date(2018, 1, 2, 19, 17, 44, 438399700, time.UTC),
		Hub: testHub, DeviceID: "LogicAppTestDevice", Device: testDevice(), Caller: "iothubowner",
	}
}

func jsonTelemetry() telemetry.Message {
	return telemetry.Message{
		DeviceID: "LogicAppTestDevice", EnqueuedTime: time.Date(2019, 1, 7, 20, 58, 30, 480000000, time.UTC),
		Payload:          []byte(`{"Weather": {"Temperature": 900}, "Location": "USA"}`),
		Properties:       map[string]string{"Status": "Active"},
		SystemProperties: map[string]string{"content-type": "application/json", "content-encoding": "utf-8", "message-id": "m-1"},
	}
}

func binaryTelemetry() telemetry.Message {
	return telemetry.Message{
		DeviceID: "LogicAppTestDevice", EnqueuedTime: time.Date(2019, 1, 7, 20, 58, 30, 480000000, time.UTC),
		Payload: []byte{0x00, 0x01, 0xfe, 0xff},
	}
}

// sampleEvents is one event of every type, by golden-file name.
func sampleEvents() map[string]Event {
	conn, _ := FromConnection(testResource, connectedEvent(), Marks{})
	disc, _ := FromConnection(testResource, disconnectedEvent(), Marks{TokenRenewal: true})
	created, _ := FromChange(testResource, change(registry.OpCreated))
	deleted, _ := FromChange(testResource, change(registry.OpDeleted))
	return map[string]Event{
		"connected":        conn,
		"disconnected":     disc,
		"created":          created,
		"deleted":          deleted,
		"telemetry-json":   FromTelemetry(testResource, testHub, jsonTelemetry(), TelemetrySourceID("TETHER_TELEMETRY", 42)),
		"telemetry-binary": FromTelemetry(testResource, testHub, binaryTelemetry(), TelemetrySourceID("TETHER_TELEMETRY", 43)),
	}
}
