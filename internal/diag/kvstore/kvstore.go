// Package kvstore is the diag.Store on a NATS JetStream KV bucket,
// "tether_diagnostic_settings", which New creates or updates. Keys are
// the settings' lower-case names (letters, digits, '-' and '_', which KV
// keys allow); values are the JSON of diag.Setting.
package kvstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/diag"
	"github.com/tether-hub/tether/internal/journal"
)

// Bucket is the KV bucket of diagnostic settings.
const Bucket = "tether_diagnostic_settings"

// Store is a diag.Store on JetStream KV.
type Store struct {
	kv jetstream.KeyValue
}

var _ diag.Store = (*Store)(nil)

// New creates or updates the bucket (replicas: 1 on the embedded server,
// more on a cluster) and returns a store on it.
func New(ctx context.Context, js jetstream.JetStream, replicas int) (*Store, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "Tether diagnostic settings (diag.Setting JSON by lower-case name)",
		History:     5,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("diag/kvstore: bucket %s: %w", Bucket, err)
	}
	return &Store{kv: kv}, nil
}

func key(name string) string { return strings.ToLower(name) }

// Get implements diag.Store.
func (s *Store) Get(ctx context.Context, name string) (diag.Setting, error) {
	if name == "" || strings.ContainsAny(name, ".*> ") { // not a key any setting has
		return diag.Setting{}, diag.ErrNotFound
	}
	e, err := s.kv.Get(ctx, key(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return diag.Setting{}, diag.ErrNotFound
	}
	if err != nil {
		return diag.Setting{}, fmt.Errorf("diag/kvstore: get %s: %w", name, err)
	}
	return decode(e.Key(), e.Value())
}

func decode(k string, v []byte) (diag.Setting, error) {
	var st diag.Setting
	if err := json.Unmarshal(v, &st); err != nil {
		return st, fmt.Errorf("diag/kvstore: setting at key %s is corrupt: %w", k, err)
	}
	return st, nil
}

// List implements diag.Store.
func (s *Store) List(ctx context.Context) ([]diag.Setting, error) {
	keys, err := s.kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("diag/kvstore: list: %w", err)
	}
	slices.Sort(keys)
	out := make([]diag.Setting, 0, len(keys))
	for _, k := range keys {
		st, err := s.Get(ctx, k)
		if errors.Is(err, diag.ErrNotFound) { // deleted meanwhile
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Create implements diag.Store.
func (s *Store) Create(ctx context.Context, st diag.Setting) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if _, err := s.kv.Create(ctx, key(st.Name), b); errors.Is(err, jetstream.ErrKeyExists) {
		return diag.ErrExists
	} else if err != nil {
		return fmt.Errorf("diag/kvstore: create %s: %w", st.Name, err)
	}
	return nil
}

// Put implements diag.Store.
func (s *Store) Put(ctx context.Context, st diag.Setting) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, key(st.Name), b); err != nil {
		return fmt.Errorf("diag/kvstore: put %s: %w", st.Name, err)
	}
	return nil
}

// Delete implements diag.Store. It reads first (a KV delete of a missing
// key would succeed), without decoding: a corrupt value can be deleted.
func (s *Store) Delete(ctx context.Context, name string) error {
	if name == "" || strings.ContainsAny(name, ".*> ") {
		return diag.ErrNotFound
	}
	e, err := s.kv.Get(ctx, key(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return diag.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("diag/kvstore: get %s: %w", name, err)
	}
	// Only the entry read: a write since then is not deleted unseen.
	if err := s.kv.Delete(ctx, key(name), jetstream.LastRevision(e.Revision())); err != nil {
		return fmt.Errorf("diag/kvstore: delete %s: %w", name, err)
	}
	return nil
}

// Watch implements diag.Store on a KV watch of every key (the bucket's
// last entry per key, then the updates, in stream order).
func (s *Store) Watch(ctx context.Context) (<-chan diag.Change, error) {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("diag/kvstore: watch %s: %w", Bucket, err)
	}
	out := make(chan diag.Change, 64)
	go func() {
		defer close(out)
		journal.FollowKV(ctx, w, func(e jetstream.KeyValueEntry) bool {
			c := diag.Change{CaughtUp: true}
			if e != nil {
				c = change(e)
			}
			select {
			case out <- c:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	return out, nil
}

func change(e jetstream.KeyValueEntry) diag.Change {
	c := diag.Change{Revision: e.Revision(), Key: e.Key()}
	if e.Operation() != jetstream.KeyValuePut {
		c.Deleted = true
		return c
	}
	c.Setting, c.Err = decode(e.Key(), e.Value())
	return c
}

// Revision implements diag.Store: the bucket stream's last sequence.
func (s *Store) Revision(ctx context.Context) (uint64, error) {
	st, err := s.kv.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("diag/kvstore: status of %s: %w", Bucket, err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return 0, fmt.Errorf("diag/kvstore: status of %s: no stream state (%T)", Bucket, st)
	}
	return bs.StreamInfo().State.LastSeq, nil
}
