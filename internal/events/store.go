package events

import "context"

// SubscriptionStore persists subscriptions, definition and state together.
// The events package owns this interface; adapters live in subpackages
// (memstore, kvstore) and are held to the contract in storetest.
//
// Names are unique without regard to case: every method finds a
// subscription by NameKey(name), and the stored Name keeps the case it was
// last written with. Revisions are assigned by the store, are never 0 and grow
// with every write of the store (a delete and re-create never reuse one).
// Stores keep what they are given; validation is the caller's job. Values
// returned share nothing with the store or with values passed in.
type SubscriptionStore interface {
	// Get returns the subscription and its revision, or ErrNotFound.
	Get(ctx context.Context, name string) (Subscription, uint64, error)
	// List returns every subscription, ordered by NameKey.
	List(ctx context.Context) ([]Subscription, error)
	// Create stores a new subscription and returns its revision;
	// ErrExists if the name is taken.
	Create(ctx context.Context, s Subscription) (uint64, error)
	// Update replaces the subscription of s.Name if its revision is
	// expectRevision (0: whatever revision the store finds) and returns the
	// new revision; ErrNotFound if there is none, ErrConflict if another
	// write came first.
	Update(ctx context.Context, s Subscription, expectRevision uint64) (uint64, error)
	// Delete removes the subscription if its revision is expectRevision
	// (0: any); ErrNotFound or ErrConflict as for Update.
	Delete(ctx context.Context, name string, expectRevision uint64) error
}

// ValidName reports whether name follows the subscription name rule; stores
// use it to refuse names they could not key.
func ValidName(name string) bool { return checkName(name) == "" }

// ChangeWatcher is a SubscriptionStore that signals writes to it, by this
// process or another node, so that a reader of the whole store (the
// delivery engine) lists it again when something changed instead of
// polling it.
type ChangeWatcher interface {
	// WatchChanges returns a channel that receives (coalesced: capacity 1)
	// after each write of a subscription from now on, and a stop func
	// that ends the watch. A signal may come before the write is visible
	// to List; readers allow for that.
	WatchChanges() (changes <-chan struct{}, stop func(), err error)
}
