// Package kvstore is an events.SubscriptionStore on a NATS JetStream KV
// bucket, "tether_subscriptions", which New creates (or updates) itself.
// The bucket's per-key revision is the store revision, so conditional
// writes are KV compare-and-set operations and stay correct with several
// hub nodes on one NATS cluster.
//
// Keys are events.NameKey(name): subscription names are letters, digits and
// hyphens, which KV keys allow, and lower-casing them makes names unique
// without regard to case. Values are the JSON of events.Subscription.
package kvstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/events"
)

// Bucket is the KV bucket of subscriptions.
const Bucket = "tether_subscriptions"

// Options configure New.
type Options struct {
	// Replicas of the bucket on a NATS cluster; default 1.
	Replicas int
	// History is how many revisions of each subscription the bucket keeps
	// (1–64); default 5, so recent changes can be inspected with any NATS
	// client (nats kv history tether_subscriptions <name>).
	History uint8
}

// Store is an events.SubscriptionStore on JetStream KV.
type Store struct {
	kv jetstream.KeyValue
	js jetstream.JetStream
}

var (
	_ events.SubscriptionStore = (*Store)(nil)
	_ events.ChangeWatcher     = (*Store)(nil)
)

// New creates or updates the bucket and returns a store on it.
func New(ctx context.Context, js jetstream.JetStream, o Options) (*Store, error) {
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.History == 0 {
		o.History = 5
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "Tether webhook event subscriptions (events.Subscription JSON by lower-case name)",
		History:     o.History,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("kvstore: bucket %s: %w", Bucket, err)
	}
	return &Store{kv: kv, js: js}, nil
}

// WatchChanges implements events.ChangeWatcher with a plain subscription
// to the bucket's subjects: every put, delete and purge of a key is a
// publish there, from any node of the NATS cluster. Unlike a KV watcher
// (an ordered consumer with heartbeats) it costs nothing while nothing is
// written.
func (s *Store) WatchChanges() (<-chan struct{}, func(), error) {
	changes := make(chan struct{}, 1)
	sub, err := s.js.Conn().Subscribe("$KV."+Bucket+".>", func(*nats.Msg) {
		select {
		case changes <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, nil, fmt.Errorf("kvstore: watching bucket %s: %w", Bucket, err)
	}
	return changes, func() { _ = sub.Unsubscribe() }, nil
}

// Get implements events.SubscriptionStore.
func (s *Store) Get(ctx context.Context, name string) (events.Subscription, uint64, error) {
	if !events.ValidName(name) { // not a valid key, and no subscription has it
		return events.Subscription{}, 0, events.ErrNotFound
	}
	e, err := s.kv.Get(ctx, events.NameKey(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return events.Subscription{}, 0, events.ErrNotFound
	}
	if err != nil {
		return events.Subscription{}, 0, fmt.Errorf("kvstore: get %s: %w", name, err)
	}
	sub, err := decode(e)
	return sub, e.Revision(), err
}

func decode(e jetstream.KeyValueEntry) (events.Subscription, error) {
	var sub events.Subscription
	if err := json.Unmarshal(e.Value(), &sub); err != nil {
		return sub, fmt.Errorf("kvstore: subscription at key %s revision %d is corrupt: %w", e.Key(), e.Revision(), err)
	}
	return sub, nil
}

// List implements events.SubscriptionStore. It reads the bucket with one
// watcher rather than a Get per key.
func (s *Store) List(ctx context.Context) ([]events.Subscription, error) {
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("kvstore: reading bucket %s: %w", Bucket, err)
	}
	defer func() { _ = w.Stop() }()
	var out []events.Subscription
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("kvstore: reading bucket %s: watcher closed early", Bucket)
			}
			if e == nil { // end of the current values
				sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
				return out, nil
			}
			sub, err := decode(e)
			if err != nil {
				return nil, err
			}
			out = append(out, sub)
		}
	}
}

// Create implements events.SubscriptionStore.
func (s *Store) Create(ctx context.Context, sub events.Subscription) (uint64, error) {
	b, err := encode(sub)
	if err != nil {
		return 0, err
	}
	rev, err := s.kv.Create(ctx, sub.Key(), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, events.ErrExists
	}
	if err != nil {
		return 0, fmt.Errorf("kvstore: create %s: %w", sub.Name, err)
	}
	return rev, nil
}

// Update implements events.SubscriptionStore.
func (s *Store) Update(ctx context.Context, sub events.Subscription, expectRevision uint64) (uint64, error) {
	b, err := encode(sub)
	if err != nil {
		return 0, err
	}
	if expectRevision == 0 {
		// KV would treat 0 as "must not exist"; use the current revision.
		_, rev, err := s.Get(ctx, sub.Name)
		if err != nil {
			return 0, err
		}
		expectRevision = rev
	}
	rev, err := s.kv.Update(ctx, sub.Key(), b, expectRevision)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return 0, s.conflict(ctx, sub.Name)
	}
	if err != nil {
		return 0, fmt.Errorf("kvstore: update %s: %w", sub.Name, err)
	}
	return rev, nil
}

// Delete implements events.SubscriptionStore. It reads first: a KV delete
// of a missing key would succeed (it only writes a marker).
func (s *Store) Delete(ctx context.Context, name string, expectRevision uint64) error {
	_, rev, err := s.Get(ctx, name)
	if err != nil {
		return err
	}
	if expectRevision != 0 && rev != expectRevision {
		return events.ErrConflict
	}
	err = s.kv.Delete(ctx, events.NameKey(name), jetstream.LastRevision(rev))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return s.conflict(ctx, name)
	}
	if err != nil {
		return fmt.Errorf("kvstore: delete %s: %w", name, err)
	}
	return nil
}

// conflict tells a failed compare-and-set on a gone key (ErrNotFound) from
// one on a changed key (ErrConflict).
func (s *Store) conflict(ctx context.Context, name string) error {
	_, _, err := s.Get(ctx, name)
	if errors.Is(err, events.ErrNotFound) {
		return events.ErrNotFound
	}
	if err != nil {
		return err
	}
	return events.ErrConflict
}

func encode(sub events.Subscription) ([]byte, error) {
	if !events.ValidName(sub.Name) {
		return nil, fmt.Errorf("kvstore: %w: name %q", events.ErrInvalid, sub.Name)
	}
	b, err := json.Marshal(sub)
	if err != nil {
		return nil, fmt.Errorf("kvstore: encoding subscription %s: %w", sub.Name, err)
	}
	return b, nil
}
