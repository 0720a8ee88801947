// Package memstore is an in-memory events.SubscriptionStore for tests and
// for running without a journal. Subscriptions are kept as JSON, like the
// KV store keeps them, so the two behave alike (no aliasing, the same
// round trip).
package memstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/tether-hub/tether/internal/events"
)

// Store is an in-memory events.SubscriptionStore.
type Store struct {
	mu   sync.Mutex
	rev  uint64
	subs map[string]entry // by events.NameKey
}

type entry struct {
	data []byte
	rev  uint64
}

var _ events.SubscriptionStore = (*Store)(nil)

// New returns an empty store.
func New() *Store { return &Store{subs: map[string]entry{}} }

// Get implements events.SubscriptionStore.
func (s *Store) Get(_ context.Context, name string) (events.Subscription, uint64, error) {
	s.mu.Lock()
	e, ok := s.subs[events.NameKey(name)]
	s.mu.Unlock()
	if !ok {
		return events.Subscription{}, 0, events.ErrNotFound
	}
	sub, err := decode(e.data)
	return sub, e.rev, err
}

// List implements events.SubscriptionStore.
func (s *Store) List(_ context.Context) ([]events.Subscription, error) {
	s.mu.Lock()
	keys := make([]string, 0, len(s.subs))
	for k := range s.subs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	datas := make([][]byte, len(keys))
	for i, k := range keys {
		datas[i] = s.subs[k].data
	}
	s.mu.Unlock()
	out := make([]events.Subscription, 0, len(datas))
	for _, d := range datas {
		sub, err := decode(d)
		if err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	return out, nil
}

// Create implements events.SubscriptionStore.
func (s *Store) Create(_ context.Context, sub events.Subscription) (uint64, error) {
	data, err := encode(sub)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := events.NameKey(sub.Name)
	if _, ok := s.subs[key]; ok {
		return 0, events.ErrExists
	}
	s.rev++
	s.subs[key] = entry{data: data, rev: s.rev}
	return s.rev, nil
}

// Update implements events.SubscriptionStore.
func (s *Store) Update(_ context.Context, sub events.Subscription, expectRevision uint64) (uint64, error) {
	data, err := encode(sub)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := events.NameKey(sub.Name)
	e, ok := s.subs[key]
	if !ok {
		return 0, events.ErrNotFound
	}
	if expectRevision != 0 && e.rev != expectRevision {
		return 0, events.ErrConflict
	}
	s.rev++
	s.subs[key] = entry{data: data, rev: s.rev}
	return s.rev, nil
}

// Delete implements events.SubscriptionStore.
func (s *Store) Delete(_ context.Context, name string, expectRevision uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := events.NameKey(name)
	e, ok := s.subs[key]
	if !ok {
		return events.ErrNotFound
	}
	if expectRevision != 0 && e.rev != expectRevision {
		return events.ErrConflict
	}
	delete(s.subs, key)
	s.rev++ // a later re-create gets a larger revision than any before
	return nil
}

func encode(sub events.Subscription) ([]byte, error) {
	if !events.ValidName(sub.Name) {
		return nil, fmt.Errorf("memstore: %w: name %q", events.ErrInvalid, sub.Name)
	}
	b, err := json.Marshal(sub)
	if err != nil {
		return nil, fmt.Errorf("memstore: encoding subscription %s: %w", sub.Name, err)
	}
	return b, nil
}

func decode(b []byte) (events.Subscription, error) {
	var sub events.Subscription
	if err := json.Unmarshal(b, &sub); err != nil {
		return sub, fmt.Errorf("memstore: decoding subscription: %w", err)
	}
	return sub, nil
}
