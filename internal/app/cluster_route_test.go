package app_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A direct method, a cloud-to-device message and a desired-properties
// update sent through node 1's API for a device live on node 2 reach it
// (routed to node 2, which holds the device); a method for a device live
// nowhere still ends in 404103 after its connect timeout.
func TestClusterRoutesCallsToTheDevicesNode(t *testing.T) {
	hubs := startCluster(t)
	key := hubs[0].device("r1")
	hubs[0].device("off1")
	waitDevice(t, hubs, "r1")
	d := hubs[1].twinDevice("r1", key, true)
	if tok := d.c.Subscribe("devices/r1/messages/devicebound/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe C2D: %v", tok.Error())
	}
	eventually(t, 10*time.Second, func() error {
		if o := hubs[0].Cluster().OwnerOf("r1"); o != "n2" {
			return fmt.Errorf("node 1 sees r1 held by %q, want n2", o)
		}
		return nil
	})

	// Direct method.
	go func() {
		m := d.waitFor(t, "$iothub/methods/POST/reboot/")
		rid := m.Topic()[strings.Index(m.Topic(), "$rid=")+5:]
		d.publish(t, "$iothub/methods/res/200/?$rid="+rid, `{"rebooted":"on n2"}`)
	}()
	status, out := hubs[0].apiRaw("POST", "/twins/r1/methods"+q, []byte(`{"methodName":"reboot","payload":{"in":1},"responseTimeoutInSeconds":10}`), nil)
	if status != 200 || string(out) != "{\"status\":200,\"payload\":{\"rebooted\":\"on n2\"}}\n" {
		t.Fatalf("method via node 1: %d %s", status, out)
	}
	// A method nobody answers times out where the device is, and the
	// caller gets IoT Hub's 504101.
	status, out = hubs[0].apiRaw("POST", "/twins/r1/methods"+q, []byte(`{"methodName":"silent","responseTimeoutInSeconds":5}`), nil)
	if status != 504 || !strings.Contains(string(out), "504101") {
		t.Fatalf("unanswered method via node 1: %d %s", status, out)
	}
	d.waitFor(t, "$iothub/methods/POST/silent/")

	// Cloud-to-device message.
	status, out = hubs[0].apiRaw("POST", "/api/v1/devices/r1/messages", []byte(`{"payload":"hello from n1","messageId":"m-1"}`), nil)
	if status != 202 {
		t.Fatalf("C2D via node 1: %d %s", status, out)
	}
	if m := d.waitFor(t, "devices/r1/messages/devicebound/"); string(m.Payload()) != "hello from n1" || !strings.Contains(m.Topic(), "mid=m-1") {
		t.Fatalf("C2D: %q on %s", m.Payload(), m.Topic())
	}

	// Desired properties.
	status, out = hubs[0].apiRaw("PATCH", "/twins/r1"+q, []byte(`{"properties":{"desired":{"interval":9}}}`), nil)
	if status != 200 {
		t.Fatalf("desired via node 1: %d %s", status, out)
	}
	if m := d.waitFor(t, "$iothub/twin/PATCH/properties/desired/"); !strings.Contains(string(m.Payload()), `"interval":9`) {
		t.Fatalf("desired push: %s %s", m.Topic(), m.Payload())
	}

	// Live nowhere: answered by node 1 itself.
	start := time.Now()
	status, out = hubs[0].apiRaw("POST", "/twins/off1/methods"+q, []byte(`{"methodName":"x","connectTimeoutInSeconds":1}`), nil)
	if status != 404 || !strings.Contains(string(out), "DeviceNotOnline") || time.Since(start) < time.Second {
		t.Fatalf("offline: %d %s after %v", status, out, time.Since(start))
	}
}
