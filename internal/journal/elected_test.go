package journal

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A publish nobody answered (here: a plain subscriber took it, as a
// follower without a leader does) is sent again as soon as JetStream
// announces a new stream leader, not after ackTimeout, and stored once.
func TestUnansweredPublishRetriedWhenALeaderIsElected(t *testing.T) {
	j := open(t, t.TempDir())
	defer j.Close()
	ctx := context.Background()
	swallowed := make(chan struct{}, 4)
	sink, err := j.NC.Subscribe("elect.>", func(*nats.Msg) { swallowed <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	p := NewPublisher(j.JS, 16, slog.Default())
	defer p.Close(ctx)
	done := make(chan error, 1)
	if err := p.Publish(Msg{Subject: "elect.a", ID: "e-1", Data: []byte("x"), Done: func(err error) { done <- err }}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-swallowed:
	case <-time.After(5 * time.Second):
		t.Fatal("the first publish never went out")
	}
	// The stream appears (the "election"), the plain subscriber goes.
	_ = sink.Unsubscribe()
	if _, err := j.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "ELECT", Subjects: []string{"elect.>"}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * electedGrace)
	start := time.Now()
	if err := j.NC.Publish("$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.ELECT", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("publish finished with %v", err)
		}
		// ackTimeout is 10 s: the sweep alone would take that long.
		if d := time.Since(start); d > ackTimeout/2 {
			t.Errorf("retried %s after the announcement, want at once", d)
		}
	case <-time.After(ackTimeout / 2):
		t.Fatal("not retried after the leader announcement")
	}
	st, err := j.JS.Stream(ctx, "ELECT")
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := st.Info(ctx); info.State.Msgs != 1 {
		t.Errorf("%d messages stored, want 1", info.State.Msgs)
	}
}
