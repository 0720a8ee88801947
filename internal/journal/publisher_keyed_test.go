package journal

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A device's publish that nobody answered (here a plain subscriber takes
// it, as a follower without a leader does) is retried later; the same
// device's next event, published meanwhile, must not be stored before it.
// Before keyed publishes it was: sent at once and stored, then the retry
// stored the older event after it (the out-of-order webhook events of the
// cluster runs, docs/SCALING.md "Session 12"). When the first attempt was
// stored after all and only its answer lost, the retry is not stored again
// (same message id).
func TestKeyedPublishWaitsBehindAnUnansweredOne(t *testing.T) {
	t.Run("unanswered", func(t *testing.T) { keyedOrder(t, false) })
	t.Run("stored, answer lost", func(t *testing.T) { keyedOrder(t, true) })
}

func keyedOrder(t *testing.T, storedFirst bool) {
	j := open(t, t.TempDir())
	defer j.Close()
	ctx := context.Background()
	// The stream takes "after" subjects only; a "first" publish goes to the
	// plain subscriber, which never answers.
	cfg := jetstream.StreamConfig{Name: "ORDER", Subjects: []string{"order.*.after"}, Duplicates: time.Minute}
	st, err := j.JS.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	swallowed := make(chan *nats.Msg, 4)
	sink, err := j.NC.Subscribe("order.*.first", func(m *nats.Msg) { swallowed <- m })
	if err != nil {
		t.Fatal(err)
	}
	p := NewPublisher(j.JS, 16, slog.New(slog.DiscardHandler))
	defer p.Close(ctx)
	done := map[string]chan error{}
	publish := func(key, subject, id string) {
		t.Helper()
		ch := make(chan error, 1)
		done[id] = ch
		if err := p.Publish(Msg{Subject: subject, ID: id, Key: key, Data: []byte(id), Done: func(err error) { ch <- err }}); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(id string) {
		t.Helper()
		select {
		case err := <-done[id]:
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s was never stored", id)
		}
	}
	publish("d", "order.d.first", "d-1")
	select {
	case m := <-swallowed:
		if storedFirst {
			// The stream stores it, the publisher never hears.
			dup := nats.NewMsg("order.d.after")
			dup.Data, dup.Header = m.Data, m.Header
			if _, err := j.JS.PublishMsg(ctx, dup); err != nil {
				t.Fatal(err)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first publish never went out")
	}
	publish("d", "order.d.after", "d-2")
	// Another device's event is not held behind d's: once it is stored,
	// the publisher has handled d-2 (enqueued before it) one way or the
	// other.
	publish("e", "order.e.after", "e-1")
	wait("e-1")
	// d-2 is not reported stored while d-1 is not: a hand-over of the
	// device to another node waits for its last event's Done, and must not
	// go on while an earlier one can still be stored after it.
	select {
	case err := <-done["d-2"]:
		t.Fatalf("d-2 finished (%v) while d-1 is unanswered", err)
	default:
	}
	// The "election": the stream takes every subject, the subscriber goes,
	// and the announcement retries d-1.
	_ = sink.Unsubscribe()
	cfg.Subjects = []string{"order.>"}
	if _, err := j.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * electedGrace) // d-1 must be older than the grace to be retried at the announcement
	if err := j.NC.Publish("$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.ORDER", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	wait("d-1")
	wait("d-2")
	var order []string
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != "order.e.after" {
			order = append(order, string(m.Data))
		}
	}
	if len(order) != 2 || order[0] != "d-1" || order[1] != "d-2" {
		t.Fatalf("the stream holds device d's events as %v, want [d-1 d-2]", order)
	}
}

// Messages waiting behind a key go out in order when the one ahead fails
// (here: it cannot be encoded), and Close waits for them.
func TestKeyedPublishAfterAFailureAndClose(t *testing.T) {
	j := open(t, t.TempDir())
	defer j.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := NewPublisher(j.JS, 64, slog.New(slog.DiscardHandler))
	results := make(chan string, 64)
	bad := func() ([]byte, error) { return nil, context.Canceled }
	for n := range 40 {
		m := Msg{Subject: ConnSubject("k", "connected"), ID: string(rune('A' + n)), Key: "k", Data: []byte{byte(n)}}
		if n%10 == 0 {
			m.Encode = bad
		}
		name := m.ID
		m.Done = func(err error) {
			if err != nil {
				name += "!"
			}
			results <- name
		}
		if err := p.Publish(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	close(results)
	var got []string
	for r := range results {
		got = append(got, r)
	}
	if len(got) != 40 {
		t.Fatalf("%d messages finished, want 40", len(got))
	}
	for n, r := range got {
		want := string(rune('A' + n))
		if n%10 == 0 {
			want += "!"
		}
		if r != want {
			t.Fatalf("finished in the order %v", got)
		}
	}
	if p.Published() != 36 || p.Failed() != 4 {
		t.Errorf("published %d, failed %d; want 36 and 4", p.Published(), p.Failed())
	}
	st, _ := j.JS.Stream(ctx, StreamConn)
	for seq := uint64(1); seq <= 36; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if want := int(seq-1) + int(seq-1)/9 + 1; int(m.Data[0]) != want {
			t.Fatalf("stream seq %d holds message %d, want %d", seq, m.Data[0], want)
		}
	}
}
