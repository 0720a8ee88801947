package journal

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/presence"
)

// Connection events are encoded into buffers the publisher lends and
// reuses once a message is stored: every event the stream holds must be
// the one that was published, whatever buffer it was encoded in. Events
// of different lengths make a reused buffer's stale tail show if it were
// sent.
func TestLentPayloadsAreStoredIntact(t *testing.T) {
	j := open(t, t.TempDir())
	defer j.Close()
	ctx := context.Background()
	p := NewPublisher(j.JS, 256, slog.New(slog.DiscardHandler))
	const n = 3000
	sent := make([]presence.ConnectionEvent, n)
	done := make(chan error, n)
	for i := range sent {
		dev := fmt.Sprintf("dev-%d", i)
		ev := presence.ConnectionEvent{
			ID: dev + "/1", Kind: presence.Connected, Time: time.Unix(1_800_000_000, int64(i)).UTC(), Hub: "hub",
			DeviceID: dev, Sequence: "1", Protocol: "MQTT", MaskedIP: "127.0.0.x",
			SDKVersion: fmt.Sprintf("sdk/%0*d", i%200, 0),
			Recorded:   func(err error) { done <- err },
		}
		sent[i] = ev
		if err := p.Publish(ConnectionEventMsg(ev)); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("events not stored within a minute")
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := j.JS.Stream(ctx, StreamConn)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range sent {
		m, err := st.GetLastMsgForSubject(ctx, ConnSubject(want.DeviceID, string(want.Kind)))
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		got, err := DecodeConnectionEvent(m.Data)
		if err != nil {
			t.Fatalf("event %d: %v in %q", i, err, m.Data)
		}
		want.Recorded = nil
		if got.ID != want.ID || got.SDKVersion != want.SDKVersion || !got.Time.Equal(want.Time) || got.DeviceID != want.DeviceID {
			t.Fatalf("event %d stored as %+v, sent %+v", i, got, want)
		}
		if enc, _ := EncodeConnectionEvent(want); string(enc) != string(m.Data) {
			t.Fatalf("event %d stored as %s, sent %s", i, m.Data, enc)
		}
	}
}
