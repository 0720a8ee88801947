package journal

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestDedupeWindowCoversRetries: every stream whose messages carry ids
// remembers them longer than the publisher may retry one, and a retry
// with the id of a stored message is not stored again.
func TestDedupeWindowCoversRetries(t *testing.T) {
	if dedupeWindow < publishRetryHorizon+30*time.Second {
		t.Fatalf("dedupeWindow %v leaves less than 30 s beyond the publisher's retry horizon %v for the retrier's queue", dedupeWindow, publishRetryHorizon)
	}
	j := open(t, t.TempDir())
	defer j.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range []string{StreamConn, StreamRegistry, StreamOps, StreamInsights} {
		s, err := j.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if d := s.CachedInfo().Config.Duplicates; d < publishRetryHorizon {
			t.Errorf("%s: duplicate window %v, shorter than the publisher's retry horizon %v", name, d, publishRetryHorizon)
		}
	}
	msg := func() *nats.Msg {
		return &nats.Msg{Subject: ConnSubject("dev-1", "connected"), Data: []byte(`{}`),
			Header: nats.Header{jetstream.MsgIDHeader: {"ev-1"}}}
	}
	first, err := j.JS.PublishMsg(ctx, msg())
	if err != nil {
		t.Fatal(err)
	}
	again, err := j.JS.PublishMsg(ctx, msg()) // the publisher's retry after a lost ack
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Sequence != first.Sequence {
		t.Fatalf("a retry with a stored message's id: duplicate %v, seq %d (first stored at %d)", again.Duplicate, again.Sequence, first.Sequence)
	}
}
