package broker

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// testTwins is a minimal twin service: the broker tests check the topics
// and the routing, the documents are the registry's (tested there).
type testTwins struct {
	mu       sync.Mutex
	reported map[string]string
	version  int64
}

func (tt *testTwins) Twin(dev Requester) (int, []byte) {
	id := dev.DeviceID
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return 200, fmt.Appendf(nil, `{"desired":{"$version":1},"reported":{"r":%q,"$version":%d}}`, tt.reported[id], tt.version)
}

func (tt *testTwins) PatchReported(dev Requester, patch []byte) (int, int64, []byte) {
	id := dev.DeviceID
	if !strings.HasPrefix(string(patch), "{") {
		return 400, 0, errorBody(400004, "ArgumentInvalid", "not an object")
	}
	tt.mu.Lock()
	defer tt.mu.Unlock()
	tt.version++
	tt.reported[id] = string(patch)
	return 204, tt.version, nil
}

func withTwins(h *testHub, o *Options) {
	o.Twins = &testTwins{reported: map[string]string{}, version: 1}
}

// readPublish reads packets until a PUBLISH (skipping acks).
func (c *client) readPublish() packets.Packet {
	c.t.Helper()
	for {
		p := c.read()
		if p.FixedHeader.Type == packets.Publish {
			return p
		}
	}
}

func TestTwinRequests(t *testing.T) {
	h := startTestHub(t, withTwins)
	cl, _ := h.connect("d1", 4)
	cl.send(appendSubscribe(1, "$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/#"))
	if p := cl.read(); p.FixedHeader.Type != packets.Suback || string(p.ReasonCodes) != "\x01\x01" {
		t.Fatalf("SUBACK % x", p.ReasonCodes)
	}
	cl.send(publishPacket("$iothub/twin/GET/?$rid=a1", 0, 0, []byte(" ")))
	p := cl.readPublish()
	if p.TopicName != "$iothub/twin/res/200/?$rid=a1" || !strings.Contains(string(p.Payload), `"reported":{"r":""`) {
		t.Errorf("GET answer %q %s", p.TopicName, p.Payload)
	}
	cl.send(publishPacket("$iothub/twin/PATCH/properties/reported/?$rid=a2", 1, 7, []byte(`{"t":1}`)))
	if p := cl.read(); p.FixedHeader.Type != packets.Puback || p.PacketID != 7 {
		t.Errorf("want PUBACK 7 first, got %v", p.FixedHeader)
	}
	if p := cl.readPublish(); p.TopicName != "$iothub/twin/res/204/?$rid=a2&$version=2" || len(p.Payload) != 0 {
		t.Errorf("patch answer %q %q", p.TopicName, p.Payload)
	}
	cl.send(publishPacket("$iothub/twin/PATCH/properties/reported/?$rid=a3", 0, 0, []byte(`[1]`)))
	if p := cl.readPublish(); p.TopicName != "$iothub/twin/res/400/?$rid=a3" || !strings.Contains(string(p.Payload), `"errorCode":400004`) {
		t.Errorf("bad patch answer %q %s", p.TopicName, p.Payload)
	}
	cl.send(publishPacket("$iothub/twin/GET/", 0, 0, nil))
	if p := cl.readPublish(); p.TopicName != "$iothub/twin/res/400/?$rid=" || !strings.Contains(string(p.Payload), "$rid") {
		t.Errorf("answer to a GET without $rid: %q %s", p.TopicName, p.Payload)
	}
	if !h.b.PushDesired("d1", 5, []byte(`{"x":1,"$version":5}`)) {
		t.Fatal("desired change not pushed to a subscribed device")
	}
	if p := cl.readPublish(); p.TopicName != "$iothub/twin/PATCH/properties/desired/?$version=5" || string(p.Payload) != `{"x":1,"$version":5}` {
		t.Errorf("desired push %q %s", p.TopicName, p.Payload)
	}
	if h.b.PushDesired("d2", 5, []byte(`{}`)) {
		t.Error("desired change pushed to a device that is not connected")
	}
}

// Without $iothub/twin/res/# the device gets no answers (as on IoT Hub),
// and without the desired subscription no pushes; the session stays up.
func TestTwinNeedsSubscriptions(t *testing.T) {
	h := startTestHub(t, withTwins)
	cl, _ := h.connect("d1", 4)
	cl.send(publishPacket("$iothub/twin/GET/?$rid=1", 1, 1, nil))
	if p := cl.read(); p.FixedHeader.Type != packets.Puback {
		t.Fatalf("want PUBACK, got %v", p.FixedHeader)
	}
	if h.b.PushDesired("d1", 2, []byte(`{}`)) {
		t.Error("desired change pushed without a subscription")
	}
	cl.send(pingreq)
	if p := cl.read(); p.FixedHeader.Type != packets.Pingresp {
		t.Errorf("want only PINGRESP, got %v", p.FixedHeader)
	}
}

// The Node SDK does not subscribe again after a SAS renewal (a new
// connection with clean session 0): the twin subscriptions must hold.
func TestTwinSubscriptionsSurviveRenewal(t *testing.T) {
	h := startTestHub(t, withTwins)
	cl, _ := h.connect("d1", 4)
	cl.send(appendSubscribe(1, "$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/#"))
	cl.read()
	cl.send(disconnectV3)
	cl.waitClosed()
	cl, _ = h.connect("d1", 4)
	cl.send(publishPacket("$iothub/twin/GET/?$rid=9", 0, 0, nil))
	if p := cl.readPublish(); p.TopicName != "$iothub/twin/res/200/?$rid=9" {
		t.Errorf("GET after renewal answered on %q", p.TopicName)
	}
	if !h.b.PushDesired("d1", 3, []byte(`{"$version":3}`)) {
		t.Error("desired subscription lost on renewal")
	}
}
