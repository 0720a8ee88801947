package journal

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tether-hub/tether/internal/presence"
)

// Distinct event ids never share a Nats-Msg-Id: a generated set shaped
// like a fleet's (many devices, consecutive counters, several epochs and
// nodes, device ids that are prefixes of each other or contain '/') has
// as many digests as ids, each 24 bytes in the "c:" form, and the same
// id always gives the same digest.
func TestConnMsgIDDistinctAndStable(t *testing.T) {
	devices := []string{"a", "a/b", "a/b/c", "dev-1", "dev-10", "dev-100", "c:x", strings.Repeat("x", 128)}
	for i := range 400 {
		devices = append(devices, fmt.Sprintf("sim-%05d", i))
	}
	seen := map[string]string{}
	for _, dev := range devices {
		for _, epoch := range []uint64{133_000_000_000_000_000, 133_000_000_000_000_001} {
			for node := range uint32(3) {
				for counter := range uint64(40) {
					id := dev + "/" + presence.FormatSequence(epoch, node, counter)
					got := ConnMsgID(id)
					if len(got) != connMsgIDLen || !strings.HasPrefix(got, connMsgIDPrefix) {
						t.Fatalf("ConnMsgID(%q) = %q: want %d bytes starting %q", id, got, connMsgIDLen, connMsgIDPrefix)
					}
					if again := ConnMsgID(id); again != got {
						t.Fatalf("ConnMsgID(%q) gave %q, then %q", id, got, again)
					}
					if other, dup := seen[got]; dup {
						t.Fatalf("ids %q and %q share the Nats-Msg-Id %q", other, id, got)
					}
					seen[got] = id
				}
			}
		}
	}
	// Refusals' ids are 32 random hex digits.
	for i := range 1000 {
		id := fmt.Sprintf("%032x", i)
		if other, dup := seen[ConnMsgID(id)]; dup {
			t.Fatalf("ids %q and %q share a Nats-Msg-Id", other, id)
		}
		seen[ConnMsgID(id)] = id
	}
}

// One allocation per id, the result: the hash reads a stack buffer.
func TestConnMsgIDAllocations(t *testing.T) {
	id := "sim-00042/" + presence.FormatSequence(133_000_000_000_000_000, 0, 7)
	if n := testing.AllocsPerRun(100, func() { _ = ConnMsgID(id) }); n > 1 {
		t.Errorf("ConnMsgID: %.0f allocations, want 1", n)
	}
}

// An event published twice — the publisher's retry after a lost ack, or
// a re-send after the hub restarted on the same data dir — is stored
// once, under the event's full id in its payload, and a later event of
// the same device is stored beside it.
func TestConnectionEventPublishedTwiceStoredOnce(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	event := func(counter uint64, done chan error) presence.ConnectionEvent {
		seq := presence.FormatSequence(133_000_000_000_000_000, 0, counter)
		return presence.ConnectionEvent{
			ID: "dev-1/" + seq, Kind: presence.Connected, Time: time.Unix(1_800_000_000, 0).UTC(), Hub: "hub",
			DeviceID: "dev-1", Sequence: seq, Protocol: "MQTT",
			Recorded: func(err error) { done <- err },
		}
	}
	publish := func(j *Journal, evs ...presence.ConnectionEvent) {
		t.Helper()
		p := NewPublisher(j.JS, 16, slog.New(slog.DiscardHandler))
		for _, ev := range evs {
			if err := p.Publish(ConnectionEventMsg(ev)); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	stored := func(j *Journal) []string {
		t.Helper()
		c, err := j.JS.OrderedConsumer(ctx, StreamConn, jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := j.JS.Stream(ctx, StreamConn)
		if err != nil {
			t.Fatal(err)
		}
		n := int(st.CachedInfo().State.Msgs)
		var ids []string
		for range n {
			m, err := c.Next(jetstream.FetchMaxWait(30 * time.Second))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := DecodeConnectionEvent(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := m.Headers().Get(jetstream.MsgIDHeader), ConnMsgID(ev.ID); got != want {
				t.Errorf("event %s stored with Nats-Msg-Id %q, want %q", ev.ID, got, want)
			}
			ids = append(ids, ev.ID)
		}
		return ids
	}
	done := make(chan error, 8)
	first, second := event(1, done), event(2, done)

	j := open(t, dir)
	publish(j, first, first)
	if ids := stored(j); len(ids) != 1 || ids[0] != first.ID {
		t.Fatalf("after two publishes of one event the stream holds %q, want [%s]", ids, first.ID)
	}
	j.Close()

	j = open(t, dir) // the hub again, on the same data dir
	defer j.Close()
	publish(j, first, second)
	if ids := stored(j); len(ids) != 2 || ids[0] != first.ID || ids[1] != second.ID {
		t.Fatalf("after a restart and a re-send the stream holds %q, want [%s %s]", ids, first.ID, second.ID)
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatalf("a publish answered %v; a duplicate is stored, not an error", err)
		}
	}
}
