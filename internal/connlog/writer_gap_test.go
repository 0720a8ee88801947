package connlog_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
)

// gatedStore holds the first Append until released, so that the test can
// act on the journal while the Writer has a batch in hand.
type gatedStore struct {
	connlog.LogStore
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *gatedStore) Append(ctx context.Context, rs []connlog.Record) error {
	first := false
	s.once.Do(func() { first = true; close(s.entered) })
	if first {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.LogStore.Append(ctx, rs)
}

// A message the journal delivered to a fetch the Writer never saw — in a
// cluster: a consumer leader killed or stopped after its delivery was
// replicated but before it reached the Writer, or a fetch the client gave
// up on before a slow leader answered it — must not be acknowledged by
// the ack of a later batch (the consumers ack all). Here a second fetch
// on the Writer's consumer takes such a delivery and drops it; AckWait is
// an hour, so only the Writer noticing the gap in the delivery sequence
// can bring it back. (Issue 15: a node's Connections log lost one event
// when the consumer's leader changed.)
func TestWriterDoesNotAckADeliveryItNeverSaw(t *testing.T) {
	testUnseenDelivery(t, false)
}

// The same with a NATS server that has no consumer reset (older than the
// embedded one): the Writer deletes the consumer and creates it again
// from its ack floor.
func TestWriterDoesNotAckADeliveryItNeverSawWithoutReset(t *testing.T) {
	testUnseenDelivery(t, true)
}

// noResetJS answers a consumer reset as a server without that API does.
type noResetJS struct {
	jetstream.JetStream
	resets atomic.Int32
}

func (js *noResetJS) ResetConsumer(context.Context, string, string) (*jetstream.ConsumerResetResponse, error) {
	js.resets.Add(1)
	return nil, nats.ErrNoResponders
}

func testUnseenDelivery(t *testing.T, withoutReset bool) {
	j := openJournal(t)
	gate := &gatedStore{LogStore: openStore(t), entered: make(chan struct{}), release: make(chan struct{})}
	nr := &noResetJS{JetStream: j.JS}
	w := startWriter(t, j, gate, func(o *connlog.WriterOptions) {
		o.Categories = []string{connlog.CategoryConnections}
		o.AckWait = time.Hour
		o.IdleCheck = time.Hour
		if withoutReset {
			o.JS = nr
		}
	})
	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	ev := func(i int) presence.ConnectionEvent {
		return presence.ConnectionEvent{ID: fmt.Sprintf("ev-%d", i), Kind: presence.Connected,
			Time: start.Add(time.Duration(i) * time.Second), Hub: "myhub.azure-devices.net", DeviceID: fmt.Sprintf("dev-%d", i),
			Protocol: "MQTT", MaskedIP: "10.0.0.XXX", SessionID: fmt.Sprintf("s%d", i)}
	}
	events := []presence.ConnectionEvent{ev(1), ev(2), ev(3)}

	publishEvent(t, j.JS, events[0])
	select {
	case <-gate.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the Writer never appended the first event")
	}
	// The Writer holds event 1 (delivery 1). Event 2 goes to a fetch that
	// is lost (delivery 2), then event 3 is published.
	publishEvent(t, j.JS, events[1])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := j.JS.Consumer(ctx, journal.StreamConn, connlog.ConsumerName(connlog.DefaultDurable, connlog.CategoryConnections))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var lost []jetstream.Msg
	for m := range batch.Messages() {
		lost = append(lost, m)
	}
	if len(lost) != 1 {
		t.Fatalf("the lost fetch got %d messages (%v), want event 2", len(lost), batch.Error())
	}
	if md, err := lost[0].Metadata(); err != nil || md.Sequence.Consumer != 2 || md.Sequence.Stream != 2 {
		t.Fatalf("the lost fetch got %+v (%v), want event 2 as delivery 2", md, err)
	}
	publishEvent(t, j.JS, events[2])
	close(gate.release)

	want := expectedRecords(t, events, nil)
	eventually(t, 10*time.Second, func() (bool, string) {
		got := findAll(t, gate, connlog.Filter{})
		return slices.Equal(itemIDs(got), itemIDs(want)),
			fmt.Sprintf("stored %v, want %v (an ack of a later batch acknowledged a delivery the Writer never received)", itemIDs(got), itemIDs(want))
	})
	eventually(t, 10*time.Second, lagIsZero(t, w))
	if withoutReset && nr.resets.Load() == 0 {
		t.Error("the Writer never asked for a consumer reset")
	}
}
