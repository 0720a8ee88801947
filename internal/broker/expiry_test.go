package broker

import (
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/sas"
)

// The broker's one expiry timer ends each session when its own token
// expires, in any order of connecting, and forgets sessions that ended
// before their tokens did.
func TestTokenExpiriesEndEachSession(t *testing.T) {
	h := startTestHub(t)
	now := time.Now()
	// Later expiries connect first, so the timer is moved earlier too.
	devices := []struct {
		id      string
		expires time.Duration
		leaves  bool // disconnects before its token expires
	}{
		{"d-late", 3500 * time.Millisecond, false},
		{"d-leaves-late", 3500 * time.Millisecond, true},
		{"d-early", 1500 * time.Millisecond, false},
		{"d-leaves-early", 1500 * time.Millisecond, true},
		{"d-early2", 1500 * time.Millisecond, false},
		{"d-never", time.Hour, false},
	}
	clients := map[string]*client{}
	for _, d := range devices {
		tok, err := sas.Sign(sas.DeviceResource(testHubName, d.id), testKey, "", now.Add(d.expires))
		if err != nil {
			t.Fatal(err)
		}
		cl := h.dial()
		cl.send(connectPacket(4, d.id, username(d.id), tok, 60, false))
		if p := cl.read(); p.ReasonCode != 0 {
			t.Fatalf("%s: CONNACK %d", d.id, p.ReasonCode)
		}
		clients[d.id] = cl
	}
	for _, d := range devices {
		if d.leaves {
			clients[d.id].send(disconnectV3)
			clients[d.id].waitClosed()
		}
	}
	for _, d := range devices {
		if d.id == "d-never" {
			continue
		}
		evs := h.waitEvents(d.id, 2)
		want := presence.ReasonTokenExpired
		if d.leaves {
			want = presence.ReasonClient
		}
		if evs[1].Reason != want {
			t.Errorf("%s: ended %s, want %s", d.id, evs[1].Reason, want)
		}
		if d.leaves {
			continue
		}
		// SAS expiries are whole seconds: the end comes at the second.
		at := time.Unix(now.Add(d.expires).Unix(), 0)
		if got := evs[1].Time; got.Before(at) || got.After(at.Add(time.Second)) {
			t.Errorf("%s: ended at %v, its token expired at %v", d.id, got, at)
		}
	}
	h.b.expiries.mu.Lock()
	left := len(h.b.expiries.q)
	h.b.expiries.mu.Unlock()
	if left != 1 {
		t.Errorf("%d sessions wait for their expiry, want 1 (d-never)", left)
	}
	if evs := h.events("d-never"); len(evs) != 1 {
		t.Errorf("d-never: %d events, want only its connect", len(evs))
	}
}
