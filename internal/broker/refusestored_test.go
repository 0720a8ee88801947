package broker

import (
	"errors"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/presence"
)

// A refused CONNECT is answered only once its refusal is stored, as a
// connect is: a device told "refused" finds the refusal in the log. One
// the journal could not store gets no CONNACK, only the close.
func TestRefusalAnsweredOnceStored(t *testing.T) {
	held := make(chan presence.ConnectionEvent, 4)
	h := startTestHub(t, func(h *testHub, o *Options) {
		o.Presence = presence.NewTracker(presence.Options{Hub: testHubName, Epoch: 1, Sink: func(ev presence.ConnectionEvent) {
			if ev.Kind == presence.Refused {
				held <- ev
				return
			}
			if ev.Recorded != nil {
				ev.Recorded(nil)
			}
		}})
	})
	refusal := func() (*client, presence.ConnectionEvent) {
		c := h.dial()
		c.send(connectPacket(4, "off1", username("off1"), token(t, "off1"), 60, false))
		select {
		case ev := <-held:
			if ev.Recorded == nil {
				t.Fatal("the refusal carries no Recorded callback")
			}
			return c, ev
		case <-time.After(10 * time.Second):
			t.Fatal("no refusal recorded")
		}
		panic("unreachable")
	}

	c, ev := refusal()
	// Not answered while the record is on its way (a CONNACK now would be
	// a refusal the log may never hold).
	_ = c.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if p, err := c.tryRead(); err == nil {
		t.Fatalf("answered before the refusal was stored: %s", packets.PacketNames[p.FixedHeader.Type])
	}
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	ev.Recorded(nil)
	if p := c.read(); p.FixedHeader.Type != packets.Connack || p.ReasonCode != packets.Err3NotAuthorized.Code {
		t.Fatalf("after the store: %s code %d, want CONNACK not authorised", packets.PacketNames[p.FixedHeader.Type], p.ReasonCode)
	}

	c, ev = refusal()
	ev.Recorded(errors.New("journal closed"))
	if p, err := c.tryRead(); err == nil {
		t.Fatalf("a refusal the journal did not store was answered: %s", packets.PacketNames[p.FixedHeader.Type])
	}
}
