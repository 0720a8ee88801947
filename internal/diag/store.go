package diag

import "context"

// Store persists diagnostic settings. Names are unique without regard to
// case (Setting.Key). Stores keep what they are given; validation is the
// Manager's job. The one implementation is kvstore (JetStream KV), so
// settings live in the journal with the rest of the hub's state.
type Store interface {
	// List returns every stored setting, ordered by key.
	List(ctx context.Context) ([]Setting, error)
	// Get returns the setting, or ErrNotFound.
	Get(ctx context.Context, name string) (Setting, error)
	// Create stores a new setting; ErrExists if the name is taken.
	Create(ctx context.Context, s Setting) error
	// Put stores s, replacing any setting of that name.
	Put(ctx context.Context, s Setting) error
	// Delete removes the setting, or returns ErrNotFound.
	Delete(ctx context.Context, name string) error
}
