package app_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
)

// D2C telemetry with url-encoded properties is acknowledged and lands in
// the journal with decoded properties; C2D reaches the device with its
// properties; the device's lastActivityTime moves.
func TestTelemetryAndC2D(t *testing.T) {
	h := startHub(t)
	key := h.device("d1")
	telemetry := make(chan *nats.Msg, 4)
	sub, err := h.Journal().NC.ChanSubscribe(journal.TelemetrySubject("d1"), telemetry)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	c, rc := h.v3("d1", username("d1"), h.token("d1", key, time.Hour))
	if rc != 0 {
		t.Fatalf("CONNACK %d", rc)
	}
	c2d := make(chan pahov3.Message, 1)
	if tok := c.Subscribe("devices/d1/messages/devicebound/#", 1, func(_ pahov3.Client, m pahov3.Message) { c2d <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	_, _, before := h.Presence().State("d1")
	tok := c.Publish("devices/d1/messages/events/%24.mid=m1&%24.ct=application%2Fjson&%24.ce=utf-8&k%20y=v%2F1%3D2", 1, false, `{"t":21.5}`)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish not acknowledged: %v", tok.Error())
	}
	select {
	case m := <-telemetry:
		if string(m.Data) != `{"t":21.5}` {
			t.Errorf("payload %q", m.Data)
		}
		var p, s map[string]string
		_ = json.Unmarshal([]byte(m.Header.Get(journal.HeaderProperties)), &p)
		_ = json.Unmarshal([]byte(m.Header.Get(journal.HeaderSystemProperties)), &s)
		if p["k y"] != "v/1=2" || s["message-id"] != "m1" || s["content-type"] != "application/json" || m.Header.Get(journal.HeaderDeviceID) != "d1" {
			t.Errorf("headers %v", m.Header)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("telemetry did not reach the journal")
	}
	if _, _, after := h.Presence().State("d1"); !after.After(before) {
		t.Errorf("lastActivity did not move: %v → %v", before, after)
	}

	if err := h.Broker().SendC2D(context.Background(), "d1", []byte("hello"), map[string]string{"a b": "c/d"}, "msg-1"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-c2d:
		if string(m.Payload()) != "hello" || m.Topic() != "devices/d1/messages/devicebound/%24.mid=msg-1&a%20b=c%2Fd" {
			t.Errorf("C2D %q on %q", m.Payload(), m.Topic())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("C2D not delivered")
	}
	if err := h.Broker().SendC2D(context.Background(), "ghost", []byte("x"), nil, ""); err == nil {
		t.Error("C2D to an unknown device accepted")
	}
}

// The SDK does not re-subscribe after a token renewal: a clean-session-0
// session keeps its subscriptions across reconnects, and C2D sent while the
// device was offline arrives when it comes back.
func TestPersistentSessionKeepsSubscriptions(t *testing.T) {
	h := startHub(t)
	key := h.device("d1")
	c, _ := h.v3("d1", username("d1"), h.token("d1", key, time.Hour))
	if tok := c.Subscribe("devices/d1/messages/devicebound/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	c.Disconnect(100)
	h.waitEvents("d1", 2)
	if err := h.Broker().SendC2D(context.Background(), "d1", []byte("while-offline"), nil, ""); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	c2, rc := h.v3("d1", username("d1"), h.token("d1", key, time.Hour), func(o *pahov3.ClientOptions) {
		o.SetDefaultPublishHandler(func(_ pahov3.Client, m pahov3.Message) { got <- string(m.Payload()) })
	})
	if rc != 0 {
		t.Fatalf("CONNACK %d", rc)
	}
	expect := func(want string) {
		t.Helper()
		select {
		case p := <-got:
			if p != want {
				t.Fatalf("got %q, want %q", p, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q not delivered", want)
		}
	}
	expect("while-offline")
	if err := h.Broker().SendC2D(context.Background(), "d1", []byte("after-reconnect"), nil, ""); err != nil {
		t.Fatal(err)
	}
	expect("after-reconnect")
	c2.Disconnect(100)
}

// A device may publish only to its own telemetry topic and subscribe only
// to its own C2D topic; a 3.1.1 device that publishes elsewhere is
// disconnected (as IoT Hub does) and the log says why.
func TestDeviceTopicsAreEnforced(t *testing.T) {
	h := startHub(t)
	key := h.device("d1")
	h.device("d2")
	c, _ := h.v3("d1", username("d1"), h.token("d1", key, time.Hour))
	sub := c.Subscribe("devices/d2/messages/devicebound/#", 1, nil)
	sub.WaitTimeout(5 * time.Second)
	if st, ok := sub.(*pahov3.SubscribeToken); !ok || st.Result()["devices/d2/messages/devicebound/#"] != 0x80 {
		t.Errorf("subscription to another device's topic was granted: %v", sub.(*pahov3.SubscribeToken).Result())
	}
	c.Publish("devices/d2/messages/events/", 1, false, "spoof").WaitTimeout(2 * time.Second)
	evs := h.waitEvents("d1", 2)
	checkEvents(t, evs, wantEvent{presence.Connected, "", ""}, wantEvent{presence.Disconnected, presence.ReasonProtocolError, "401003"})
	if evs[1].Detail == "" {
		t.Error("no detail on the ACL disconnect")
	}
}
