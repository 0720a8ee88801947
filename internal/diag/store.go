package diag

import "context"

// Store persists diagnostic settings. Names are unique without regard to
// case (Setting.Key). Stores keep what they are given; validation is the
// Manager's job. The one implementation is kvstore (JetStream KV), so
// settings live in the journal with the rest of the hub's state and, on
// a cluster, are replicated to every node.
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
	// Watch sends the store's contents (one Change per key, then one
	// with CaughtUp) and then every later change, made by any node, in
	// revision order, until ctx ends; the channel is closed when the
	// watch ends (by ctx or a failure).
	Watch(ctx context.Context) (<-chan Change, error)
	// Revision is the store's latest revision: a write that returned
	// before the call has a revision at most this.
	Revision(ctx context.Context) (uint64, error)
}

// Change is one revision of a Store: Setting stored under Key, Key
// deleted, or a value that is no setting (Err).
type Change struct {
	Revision uint64
	Key      string
	Setting  Setting
	Deleted  bool
	Err      error
	// CaughtUp marks the end of the contents at the watch's start (no
	// Key).
	CaughtUp bool
}
