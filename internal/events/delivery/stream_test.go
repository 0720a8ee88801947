package delivery

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/presence"
)

// streamMsg is one message read back from a subscription's stream.
type streamMsg struct {
	Subject string
	ID      string // Nats-Msg-Id
	Event   got
}

// readStream reads every message of stream name from the start, as any
// NATS client would (an ordered consumer).
func (v *env) readStream(name string) []streamMsg {
	v.t.Helper()
	c, err := v.j.JS.OrderedConsumer(v.ctx, name, jetstream.OrderedConsumerConfig{})
	if err != nil {
		v.t.Fatal(err)
	}
	info, err := c.Info(v.ctx)
	if err != nil {
		v.t.Fatal(err)
	}
	var out []streamMsg
	for n := info.NumPending; n > 0; {
		batch, err := c.Fetch(int(n), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			v.t.Fatal(err)
		}
		for m := range batch.Messages() {
			var g got
			if err := json.Unmarshal(m.Data(), &g); err != nil {
				v.t.Fatalf("message is not an event: %v: %s", err, m.Data())
			}
			out = append(out, streamMsg{Subject: m.Subject(), ID: m.Headers().Get(jetstream.MsgIDHeader), Event: g})
			n--
		}
		if batch.Error() != nil {
			v.t.Fatal(batch.Error())
		}
	}
	return out
}

func streamDestination(props events.StreamProperties) events.Destination {
	return events.Destination{EndpointType: events.EndpointStream, Properties: events.DestinationProperties{StreamProperties: props}}
}

// Events go to the subscription's stream, one message per event on
// <prefix>.<device>.<kind>, each device's in order, the body the event in
// the Event Grid schema and Nats-Msg-Id its id; the stream has the
// subscription's limits; renewal pairs are suppressed as for webhooks.
func TestStreamDestination(t *testing.T) {
	v := newEnv(t)
	v.start()
	v.subTo("ops-stream", streamDestination(events.StreamProperties{RetentionInHours: 2, MaxMessagesPerSubject: 100}),
		func(s *events.Subscription) { s.Tether.SuppressRenewals = true })
	info, err := v.j.JS.Stream(v.ctx, "EVENTS_OPS_STREAM")
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.CachedInfo().Config
	if cfg.MaxAge != 2*time.Hour || cfg.MaxMsgsPerSubject != 100 || cfg.MaxMsgs != -1 || cfg.Subjects[0] != "events.ops-stream.>" ||
		cfg.Metadata[streamMetaKey] != "ops-stream" {
		t.Fatalf("stream config %+v", cfg)
	}
	a1 := v.conn("dev.a", presence.Connected)
	b1 := v.conn("b", presence.Connected)
	a2 := v.conn("dev.a", presence.Disconnected)
	// A renewal: client disconnect, then the renewing connect.
	r1 := v.conn("b", presence.Disconnected, func(ce *presence.ConnectionEvent) { ce.Reason, ce.Result = presence.ReasonClient, presence.ResultOK })
	v.conn("b", presence.Connected, func(ce *presence.ConnectionEvent) { ce.TokenRenewal, ce.RenewalOf = true, r1.Sequence })
	b3 := v.conn("b", presence.Disconnected)
	eventually(t, "delivered", func() bool { return v.stats("ops-stream").Delivered == 4 })
	msgs := v.readStream("EVENTS_OPS_STREAM")
	byDev := map[string][]string{}
	for _, m := range msgs {
		if m.ID != m.Event.ID {
			t.Errorf("Nats-Msg-Id %s for event %s", m.ID, m.Event.ID)
		}
		dev := strings.TrimPrefix(m.Event.Subject, "devices/")
		byDev[dev] = append(byDev[dev], m.Event.ID)
		kind := strings.ToLower(strings.TrimPrefix(m.Event.EventType, "Microsoft.Devices.Device"))
		want := "events.ops-stream." + strings.ReplaceAll(dev, ".", "%2E") + "." + kind
		if m.Subject != want {
			t.Errorf("subject %s, want %s", m.Subject, want)
		}
	}
	if !equal(byDev["dev.a"], ids(a1, a2)) || !equal(byDev["b"], ids(b1, b3)) || len(msgs) != 4 {
		t.Fatalf("stream holds %v", byDev)
	}
	if st := v.stats("ops-stream"); st.Suppressed != 2 || st.Kind != events.EndpointStream || st.Target != "EVENTS_OPS_STREAM (events.ops-stream.>)" {
		t.Errorf("stats %+v", st)
	}

	// Deleting the subscription deletes its stream.
	if err := v.store.Delete(v.ctx, "ops-stream", 0); err != nil {
		t.Fatal(err)
	}
	if err := v.eng.Reload(v.ctx, "ops-stream"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.j.JS.Stream(v.ctx, "EVENTS_OPS_STREAM"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("stream after delete: %v", err)
	}
}

// A stream the subscription does not own is never taken over, and
// subjects another stream has are refused by JetStream: the check fails
// and says why. Moving to another streamName deletes the old stream.
func TestStreamCheck(t *testing.T) {
	v := newEnv(t)
	v.start()
	if _, err := v.j.JS.CreateStream(v.ctx, jetstream.StreamConfig{Name: "THEIRS", Subjects: []string{"theirs.>"}}); err != nil {
		t.Fatal(err)
	}
	check := func(props events.StreamProperties) events.Subscription {
		s := events.Subscription{Name: "ops-stream", Destination: streamDestination(props)}
		s.ApplyDefaults()
		return v.eng.Check(v.ctx, s)
	}
	for props, want := range map[events.StreamProperties]string{
		{StreamName: "THEIRS"}:        "stream THEIRS exists and was not made for a subscription",
		{SubjectPrefix: "theirs.sub"}: "subjects overlap",
	} {
		s := check(props)
		if s.ProvisioningState != events.Failed || !strings.Contains(s.Validation.Error, want) || s.Validation.Method != events.MethodStream {
			t.Errorf("%+v: %s %+v", props, s.ProvisioningState, s.Validation)
		}
	}
	if s := check(events.StreamProperties{StreamName: "FIRST"}); s.ProvisioningState != events.Succeeded {
		t.Fatalf("%+v", s.Validation)
	}
	if s := check(events.StreamProperties{StreamName: "SECOND", SubjectPrefix: "second"}); s.ProvisioningState != events.Succeeded {
		t.Fatalf("%+v", s.Validation)
	}
	if _, err := v.j.JS.Stream(v.ctx, "FIRST"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("old stream: %v", err)
	}
	if _, err := v.j.JS.Stream(v.ctx, "THEIRS"); err != nil {
		t.Errorf("someone else's stream: %v", err)
	}
}

// A stream deleted behind the hub's back is made again by the next
// delivery.
func TestStreamRecreated(t *testing.T) {
	v := newEnv(t)
	v.start()
	v.subTo("ops-stream", streamDestination(events.StreamProperties{}))
	if err := v.j.JS.DeleteStream(v.ctx, "EVENTS_OPS_STREAM"); err != nil {
		t.Fatal(err)
	}
	e := v.conn("d1", presence.Connected)
	eventually(t, "delivered", func() bool { return v.stats("ops-stream").Delivered == 1 })
	if msgs := v.readStream("EVENTS_OPS_STREAM"); len(msgs) != 1 || msgs[0].ID != id(e) {
		t.Fatalf("%+v", msgs)
	}
}
