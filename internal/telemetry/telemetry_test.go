package telemetry

import (
	"maps"
	"testing"
)

func TestParseEventsTopic(t *testing.T) {
	// The exact topic the Node SDK sends (reference/azure-sdk-wire.md §4).
	dev, mod, props, sys, err := ParseEventsTopic("devices/dev1/messages/events/%24.mid=mid-1&%24.cid=cid%201&%24.ct=application%2Fjson&%24.ce=utf-8&alert=hot%26cold&k%20y=v%2F1%3D2&%24.sub=subj")
	if err != nil {
		t.Fatal(err)
	}
	if dev != "dev1" || mod != "" {
		t.Fatalf("device %q module %q", dev, mod)
	}
	wantProps := map[string]string{"alert": "hot&cold", "k y": "v/1=2"}
	wantSys := map[string]string{"message-id": "mid-1", "correlation-id": "cid 1", "content-type": "application/json", "content-encoding": "utf-8", "dt-subject": "subj"}
	if !maps.Equal(props, wantProps) {
		t.Errorf("props = %v, want %v", props, wantProps)
	}
	if !maps.Equal(sys, wantSys) {
		t.Errorf("sys = %v, want %v", sys, wantSys)
	}
}

func TestParseEventsTopicShapes(t *testing.T) {
	for _, tc := range []struct {
		topic    string
		dev, mod string
		ok       bool
	}{
		{"devices/d/messages/events/", "d", "", true},
		{"devices/d/messages/events", "d", "", true},
		{"devices/d/modules/m/messages/events/", "d", "m", true},
		{"devices/d/messages/devicebound/", "", "", false},
		{"devices//messages/events/", "", "", false},
		{"foo", "", "", false},
		{"devices/d/messages/events/%zz=1", "", "", false},
	} {
		dev, mod, _, _, err := ParseEventsTopic(tc.topic)
		if (err == nil) != tc.ok || (tc.ok && (dev != tc.dev || mod != tc.mod)) {
			t.Errorf("%q: dev %q mod %q err %v", tc.topic, dev, mod, err)
		}
	}
}

func TestC2DTopicRoundTrip(t *testing.T) {
	topic := C2DTopic("dev1", map[string]string{"k y": "v/1=2", "a": "é"}, "m 1")
	want := "devices/dev1/messages/devicebound/%24.mid=m%201&a=%C3%A9&k%20y=v%2F1%3D2"
	if topic != want {
		t.Fatalf("topic = %q, want %q", topic, want)
	}
	props, sys, err := ParseProperties(topic[len("devices/dev1/messages/devicebound/"):])
	if err != nil {
		t.Fatal(err)
	}
	if props["k y"] != "v/1=2" || props["a"] != "é" || sys["message-id"] != "m 1" {
		t.Fatalf("round trip lost data: %v %v", props, sys)
	}
}
