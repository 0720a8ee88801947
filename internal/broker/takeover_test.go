package broker

import (
	"fmt"
	"sync"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/presence"
)

// Five simultaneous CONNECTs for each of 100 device ids: exactly one live
// session per id; every other connect recorded as connected and then
// ended 400027; sequence numbers in recorded order.
func TestSimultaneousConnectsLeaveOneLivePerDevice(t *testing.T) {
	h := startTestHub(t)
	const ids, per = 100, 5
	var wg sync.WaitGroup
	clients := make([][]*client, ids)
	var mu sync.Mutex
	for i := range ids {
		clients[i] = make([]*client, per)
		for j := range per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl, rc := h.connect(fmt.Sprintf("d%03d", i), 4)
				if rc != 0 {
					t.Errorf("CONNACK %d", rc)
				}
				mu.Lock()
				clients[i][j] = cl
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	for i := range ids {
		dev := fmt.Sprintf("d%03d", i)
		evs := h.waitEvents(dev, 2*per-1)
		if len(evs) != 2*per-1 {
			t.Fatalf("%s: %d events, want %d", dev, len(evs), 2*per-1)
		}
		for k, ev := range evs {
			want := presence.Connected
			if k%2 == 1 {
				want = presence.Disconnected
				if ev.Reason != presence.ReasonTakeover || ev.Result.Type != "400027" {
					t.Errorf("%s event %d: %s %s, want takeover 400027", dev, k, ev.Reason, ev.Result.Type)
				}
			}
			if ev.Kind != want {
				t.Errorf("%s event %d is %s, want %s", dev, k, ev.Kind, want)
			}
			if k > 0 && ev.Sequence <= evs[k-1].Sequence {
				t.Errorf("%s: sequence %s after %s", dev, ev.Sequence, evs[k-1].Sequence)
			}
		}
		// The live one is the last connected; its client is open, the
		// four others were closed by the hub.
		live := h.b.table.live(dev)
		if live == nil || live.ps.ID != evs[len(evs)-1].SessionID {
			t.Errorf("%s: the live session is not the last connected", dev)
		}
	}
	if n := h.presence.Connected(); n != ids {
		t.Errorf("%d devices connected, want %d", n, ids)
	}
	if n := len(h.b.table.all()); n != ids {
		t.Errorf("%d live sessions, want %d", n, ids)
	}
}

// A renewing SDK sends DISCONNECT and connects again at once. Whatever the
// old connection's reader is doing when the new CONNECT is handled (parked
// in Read, busy with earlier packets), the old session ends as the
// client's disconnect, never as a takeover: 1,000 renewals.
func TestRenewalIsNeverATakeover(t *testing.T) {
	h := startTestHub(t)
	const renewals = 1000
	cl, rc := h.connect("d1", 4)
	if rc != 0 {
		t.Fatalf("CONNACK %d", rc)
	}
	for i := range renewals {
		// Keep the old reader busy with a few packets first on some
		// iterations, so the takeover meets it in different states.
		var burst []byte
		for range i % 8 {
			burst = append(burst, pingreq...)
		}
		cl.send(append(burst, disconnectV3...))
		next, rc := h.connect("d1", 4)
		if rc != 0 {
			t.Fatalf("renewal %d: CONNACK %d", i, rc)
		}
		cl.c.Close()
		cl = next
	}
	evs := h.waitEvents("d1", 2*renewals+1)
	checkRenewals(t, evs)
	for k, ev := range evs {
		if k > 0 && ev.Sequence <= evs[k-1].Sequence {
			t.Fatalf("sequence %s after %s", ev.Sequence, evs[k-1].Sequence)
		}
	}
}

// The same over TLS, where the DISCONNECT waits inside a TLS record.
func TestRenewalIsNeverATakeoverTLS(t *testing.T) {
	h := startTestHub(t, withTLS)
	const renewals = 200
	cl := h.connectTLS("d1")
	for range renewals {
		cl.send(disconnectV3)
		next := h.connectTLS("d1")
		cl.c.Close()
		cl = next
	}
	checkRenewals(t, h.waitEvents("d1", 2*renewals+1))
}

// A reconnect while the old connection is silent (no DISCONNECT) takes it
// over: 400027, and an MQTT 5 device is told why (DISCONNECT 0x8E).
func TestTakeoverTellsTheOldConnection(t *testing.T) {
	h := startTestHub(t)
	old, rc := h.connect("d1", 5)
	if rc != 0 {
		t.Fatalf("CONNACK %d", rc)
	}
	_, rc = h.connect("d1", 4)
	if rc != 0 {
		t.Fatalf("CONNACK %d", rc)
	}
	p := old.read()
	if p.FixedHeader.Type != packets.Disconnect || p.ReasonCode != v5SessionTakenOver {
		t.Errorf("old connection got %s 0x%02x, want DISCONNECT 0x8E", packets.PacketNames[p.FixedHeader.Type], p.ReasonCode)
	}
	old.waitClosed()
	evs := h.waitEvents("d1", 3)
	if evs[1].Reason != presence.ReasonTakeover || evs[1].Result.Type != "400027" {
		t.Errorf("old session ended as %s %s", evs[1].Reason, evs[1].Result.Type)
	}
}
