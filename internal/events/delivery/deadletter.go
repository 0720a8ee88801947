package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/journal"
)

// DeadLetterRecord is one dead-lettered event of a subscription: the event
// and what Event Grid writes beside it (events.DeadLetter), where the
// store keeps it (Seq) and which journal record it came from.
type DeadLetterRecord struct {
	// Seq is the record's position in the store; List fills it.
	Seq          uint64
	Subscription string
	events.DeadLetter
	// Stream and StreamSeq name the journal record the event was made
	// from ("" and 0 when unknown).
	Stream    string
	StreamSeq uint64
}

// DeadLetterStore keeps dead letters per subscription. The engine owns
// this interface; JetStreamDeadLetters is the hub's implementation.
type DeadLetterStore interface {
	// Put stores r and returns its Seq.
	Put(ctx context.Context, r DeadLetterRecord) (uint64, error)
	// List returns up to limit records of subscription sub (0: all), oldest
	// first.
	List(ctx context.Context, sub string, limit int) ([]DeadLetterRecord, error)
	// Delete removes the record at seq of subscription sub; a missing
	// record is not an error.
	Delete(ctx context.Context, sub string, seq uint64) error
	// Purge removes every record of subscription sub.
	Purge(ctx context.Context, sub string) error
}

// Dead-letter stream and subjects: tether.deadletter.<subscription key>.<device>
// (device encoded as journal.EncodeToken does), the record as JSON.
const (
	DeadLetterStream = "TETHER_DEADLETTER"
	DeadLetterPrefix = "tether.deadletter."
)

// DeadLetterSubject is the subject of a dead letter of subscription sub for
// device.
func DeadLetterSubject(sub, device string) string {
	return DeadLetterPrefix + events.NameKey(sub) + "." + journal.EncodeToken(device)
}

// DeadLetterOptions configure OpenDeadLetters.
type DeadLetterOptions struct {
	Replicas int
	// MaxAge bounds how long dead letters are kept; default 30 days (Event
	// Grid drops a dead letter it cannot store; Tether keeps it, but not
	// forever).
	MaxAge time.Duration
}

// JetStreamDeadLetters is a DeadLetterStore on the TETHER_DEADLETTER stream.
type JetStreamDeadLetters struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

var _ DeadLetterStore = (*JetStreamDeadLetters)(nil)

// OpenDeadLetters creates or updates the TETHER_DEADLETTER stream.
func OpenDeadLetters(ctx context.Context, js jetstream.JetStream, o DeadLetterOptions) (*JetStreamDeadLetters, error) {
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.MaxAge == 0 {
		o.MaxAge = 30 * 24 * time.Hour
	}
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        DeadLetterStream,
		Description: "Tether webhook dead letters (delivery.DeadLetterRecord JSON by subscription and device)",
		Subjects:    []string{DeadLetterPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		MaxAge:      o.MaxAge,
		Duplicates:  2 * time.Minute,
		AllowDirect: true,
	})
	if err != nil {
		return nil, fmt.Errorf("delivery: stream %s: %w", DeadLetterStream, err)
	}
	return &JetStreamDeadLetters{js: js, stream: s}, nil
}

// Put implements DeadLetterStore. The message id (subscription, event id,
// last attempt) makes a retried Put store the record once.
func (s *JetStreamDeadLetters) Put(ctx context.Context, r DeadLetterRecord) (uint64, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	m := nats.NewMsg(DeadLetterSubject(r.Subscription, r.Event.DeviceID))
	m.Data = b
	m.Header.Set(jetstream.MsgIDHeader, events.NameKey(r.Subscription)+"/"+r.Event.ID+"/"+
		strconv.FormatInt(r.LastDeliveryAttemptTime.UnixNano(), 10))
	ack, err := s.js.PublishMsg(ctx, m)
	if err != nil {
		return 0, fmt.Errorf("delivery: storing dead letter: %w", err)
	}
	return ack.Sequence, nil
}

// List implements DeadLetterStore with an ephemeral consumer over the
// subscription's subjects (its creation tells how many there are).
func (s *JetStreamDeadLetters) List(ctx context.Context, sub string, limit int) ([]DeadLetterRecord, error) {
	c, err := s.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubjects:    []string{DeadLetterPrefix + events.NameKey(sub) + ".>"},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("delivery: listing dead letters: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.stream.DeleteConsumer(dctx, c.CachedInfo().Name)
	}()
	n := int(c.CachedInfo().NumPending)
	if limit > 0 && n > limit {
		n = limit
	}
	out := make([]DeadLetterRecord, 0, n)
	for len(out) < n {
		batch, err := c.Fetch(min(n-len(out), 256), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("delivery: listing dead letters: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var r DeadLetterRecord
			if err := json.Unmarshal(m.Data(), &r); err != nil {
				return nil, fmt.Errorf("delivery: dead letter is corrupt: %w", err)
			}
			if md, err := m.Metadata(); err == nil {
				r.Seq = md.Sequence.Stream
			}
			out = append(out, r)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("delivery: listing dead letters: %w", err)
		}
		if got == 0 {
			break // removed meanwhile
		}
	}
	return out, nil
}

// Delete implements DeadLetterStore.
func (s *JetStreamDeadLetters) Delete(ctx context.Context, _ string, seq uint64) error {
	err := s.stream.DeleteMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		return nil
	}
	return err
}

// Purge implements DeadLetterStore.
func (s *JetStreamDeadLetters) Purge(ctx context.Context, sub string) error {
	return s.stream.Purge(ctx, jetstream.WithPurgeSubject(DeadLetterPrefix+events.NameKey(sub)+".>"))
}

// deadLetterWire is the stored JSON of a DeadLetterRecord.
type deadLetterWire struct {
	Subscription            string    `json:"subscription"`
	Reason                  string    `json:"deadLetterReason"`
	DeliveryAttempts        int       `json:"deliveryAttempts"`
	LastDeliveryOutcome     string    `json:"lastDeliveryOutcome,omitempty"`
	LastHTTPStatusCode      int       `json:"lastHttpStatusCode,omitempty"`
	LastError               string    `json:"lastError,omitempty"`
	PublishTime             time.Time `json:"publishTime"`
	LastDeliveryAttemptTime time.Time `json:"lastDeliveryAttemptTime,omitzero"`
	Stream                  string    `json:"stream,omitempty"`
	StreamSeq               uint64    `json:"streamSeq,omitempty"`
	Event                   eventWire `json:"event"`
}

// eventWire is events.Event with the engine's fields, as stored.
type eventWire struct {
	ID          string           `json:"id"`
	Type        events.EventType `json:"type"`
	Topic       string           `json:"topic"`
	Subject     string           `json:"subject"`
	Time        time.Time        `json:"time"`
	DataVersion string           `json:"dataVersion"`
	Data        json.RawMessage  `json:"data"`
	DeviceID    string           `json:"deviceId"`
	Sequence    string           `json:"sequence,omitempty"`
}

// MarshalJSON writes the stored form.
func (r DeadLetterRecord) MarshalJSON() ([]byte, error) {
	e := r.Event
	return json.Marshal(deadLetterWire{
		Subscription: r.Subscription, Reason: r.Reason, DeliveryAttempts: r.DeliveryAttempts,
		LastDeliveryOutcome: r.LastDeliveryOutcome, LastHTTPStatusCode: r.LastHTTPStatus, LastError: r.LastError,
		PublishTime: r.PublishTime, LastDeliveryAttemptTime: r.LastDeliveryAttemptTime,
		Stream: r.Stream, StreamSeq: r.StreamSeq,
		Event: eventWire{ID: e.ID, Type: e.Type, Topic: e.Topic, Subject: e.Subject, Time: e.Time,
			DataVersion: e.DataVersion, Data: e.Data, DeviceID: e.DeviceID, Sequence: e.Sequence},
	})
}

// UnmarshalJSON reads the stored form.
func (r *DeadLetterRecord) UnmarshalJSON(b []byte) error {
	var w deadLetterWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	e := w.Event
	*r = DeadLetterRecord{
		Subscription: w.Subscription, Stream: w.Stream, StreamSeq: w.StreamSeq,
		DeadLetter: events.DeadLetter{
			Event: events.Event{ID: e.ID, Type: e.Type, Topic: e.Topic, Subject: e.Subject, Time: e.Time,
				DataVersion: e.DataVersion, Data: e.Data, DeviceID: e.DeviceID, Sequence: e.Sequence},
			Reason: w.Reason, DeliveryAttempts: w.DeliveryAttempts, LastDeliveryOutcome: w.LastDeliveryOutcome,
			LastHTTPStatus: w.LastHTTPStatusCode, LastError: w.LastError,
			PublishTime: w.PublishTime, LastDeliveryAttemptTime: w.LastDeliveryAttemptTime,
		},
	}
	return nil
}
