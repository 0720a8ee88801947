// Package memstore is an in-memory registry.Store, for tests and for hubs
// that do not need their registry to outlive the process.
package memstore

import (
	"bytes"
	"context"
	"sync"

	"github.com/tether-hub/tether/internal/registry"
)

// Store is an in-memory registry.Store. The zero value is not usable; call
// New.
type Store struct {
	mu       sync.Mutex
	seq      uint64 // last revision handed out, across all devices
	devices  map[string]entry
	twins    map[string]registry.StoredTwin
	policies map[string]registry.Policy
}

type entry struct {
	dev registry.Device
	rev uint64
}

var _ registry.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{devices: map[string]entry{}, twins: map[string]registry.StoredTwin{}, policies: map[string]registry.Policy{}}
}

func (s *Store) out(e entry) registry.Device {
	d := e.dev.Clone()
	d.ETag = registry.ETag(e.rev)
	return d
}

// Get implements registry.Store.
func (s *Store) Get(ctx context.Context, id string) (registry.Device, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.devices[id]
	if !ok {
		return registry.Device{}, 0, registry.ErrNotFound
	}
	return s.out(e), e.rev, nil
}

// List implements registry.Store.
func (s *Store) List(ctx context.Context) ([]registry.Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]registry.Device, 0, len(s.devices))
	for _, e := range s.devices {
		out = append(out, s.out(e))
	}
	return out, nil
}

// Create implements registry.Store.
func (s *Store) Create(ctx context.Context, d registry.Device) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.devices[d.DeviceID]; ok {
		return 0, registry.ErrExists
	}
	s.seq++
	s.devices[d.DeviceID] = entry{dev: d.Clone(), rev: s.seq}
	return s.seq, nil
}

// Update implements registry.Store.
func (s *Store) Update(ctx context.Context, d registry.Device, expectRevision uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.devices[d.DeviceID]
	if !ok {
		return 0, registry.ErrNotFound
	}
	if e.rev != expectRevision {
		return 0, registry.ErrPreconditionFailed
	}
	s.seq++
	s.devices[d.DeviceID] = entry{dev: d.Clone(), rev: s.seq}
	return s.seq, nil
}

// Delete implements registry.Store.
func (s *Store) Delete(ctx context.Context, id string, expectRevision uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.devices[id]
	if !ok {
		return registry.ErrNotFound
	}
	if expectRevision != 0 && e.rev != expectRevision {
		return registry.ErrPreconditionFailed
	}
	s.seq++ // a delete is a write too: revisions are never reused
	delete(s.devices, id)
	return nil
}

// ListTwins implements registry.Store.
func (s *Store) ListTwins(ctx context.Context) ([]registry.StoredTwin, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]registry.StoredTwin, 0, len(s.twins))
	for _, t := range s.twins {
		t.Doc = bytes.Clone(t.Doc)
		out = append(out, t)
	}
	return out, nil
}

// GetTwin implements registry.Store.
func (s *Store) GetTwin(ctx context.Context, id string) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.twins[id]
	if !ok {
		return nil, 0, registry.ErrNotFound
	}
	return bytes.Clone(t.Doc), t.Revision, nil
}

// PutTwin implements registry.Store.
func (s *Store) PutTwin(ctx context.Context, id string, doc []byte, expectRevision uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.twins[id].Revision != expectRevision {
		return 0, registry.ErrPreconditionFailed
	}
	s.seq++
	s.twins[id] = registry.StoredTwin{DeviceID: id, Doc: bytes.Clone(doc), Revision: s.seq}
	return s.seq, nil
}

// DeleteTwin implements registry.Store.
func (s *Store) DeleteTwin(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.twins, id)
	return nil
}

// ListPolicies implements registry.Store.
func (s *Store) ListPolicies(ctx context.Context) ([]registry.Policy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]registry.Policy, 0, len(s.policies))
	for _, p := range s.policies {
		out = append(out, p)
	}
	return out, nil
}

// PutPolicy implements registry.Store.
func (s *Store) PutPolicy(ctx context.Context, p registry.Policy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policies[p.Name] = p
	return nil
}

// DeletePolicy implements registry.Store.
func (s *Store) DeletePolicy(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.policies[name]; !ok {
		return registry.ErrNotFound
	}
	delete(s.policies, name)
	return nil
}
