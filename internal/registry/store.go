package registry

import "context"

// Store persists devices and policies. Revisions are assigned by the store,
// strictly increase across all writes of a store (so a delete and re-create
// never reuse one), and are never 0.
//
// Devices returned by Get and List carry ETag = ETag(revision); the stored
// ETag field is ignored. Connection fields are not the store's business:
// stores save what they are given.
//
// The contract is spelled out and checked by storetest.Run.
type Store interface {
	// Get returns the device and its revision, or ErrNotFound.
	Get(ctx context.Context, id string) (Device, uint64, error)
	// List returns all devices, in no particular order.
	List(ctx context.Context) ([]Device, error)
	// Create stores a new device and returns its revision, or ErrExists.
	Create(ctx context.Context, d Device) (uint64, error)
	// Update replaces the device if its revision is still expectRevision
	// and returns the new revision; ErrNotFound if the device is gone,
	// ErrPreconditionFailed if another write came first.
	Update(ctx context.Context, d Device, expectRevision uint64) (uint64, error)
	// Delete removes the device if its revision is expectRevision (0: any
	// revision); ErrNotFound or ErrPreconditionFailed as for Update.
	Delete(ctx context.Context, id string, expectRevision uint64) error

	// ListTwins returns every stored twin document, in no particular
	// order. A device whose twin was never written has none.
	ListTwins(ctx context.Context) ([]StoredTwin, error)
	// GetTwin returns a device's twin document and its revision, or
	// ErrNotFound.
	GetTwin(ctx context.Context, id string) ([]byte, uint64, error)
	// PutTwin writes a device's twin document if its revision is still
	// expectRevision (0: the device has no stored twin yet) and returns
	// the new revision; ErrPreconditionFailed if another write came first.
	PutTwin(ctx context.Context, id string, doc []byte, expectRevision uint64) (uint64, error)
	// DeleteTwin removes a device's twin document, if it has one.
	DeleteTwin(ctx context.Context, id string) error

	// ListPolicies returns all policies, in no particular order.
	ListPolicies(ctx context.Context) ([]Policy, error)
	// PutPolicy creates or replaces the policy of that name.
	PutPolicy(ctx context.Context, p Policy) error
	// DeletePolicy removes the policy of that name, or returns
	// ErrNotFound.
	DeletePolicy(ctx context.Context, name string) error
}

// StoredTwin is one device's twin document as a Store keeps it: opaque
// bytes the registry encodes and decodes.
type StoredTwin struct {
	DeviceID string
	Doc      []byte
	Revision uint64
}
