package registry

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"

	"github.com/tether-hub/tether/internal/twin"
)

// Device twins live beside their devices in the store and, like devices,
// in memory: a twin GET from a device or the service API and every device
// query read the cache, never the store. A twin is stored only once it
// is first written; until then a device has the empty twin IoT Hub gives
// a new device.
//
// Writes to one device's twin are serialised by a lock of their own (one
// of twinLocks, by device id), not by the registry's write lock: reported
// patches arrive at device rates, many devices at once. Each write is a
// compare-and-set on the stored revision, so another hub node's write is
// not lost: the loser reads the twin again and reapplies its change.
//
// With several hub nodes the cache of one node does not yet follow the
// writes of another (issue 15, scale-out); writes stay correct.

// TwinChange is handed to OnTwinChange after a twin write was stored, in
// the order of the device's writes.
type TwinChange struct {
	DeviceID string
	Twin     *twin.Twin // after the write; read-only
	// Desired is what to push to the device when desired properties
	// changed (the patch with "$version"); nil otherwise.
	Desired        []byte
	DesiredVersion int64
}

const twinLocks = 256

type twinCache struct {
	seed  maphash.Seed
	locks [twinLocks]sync.Mutex

	mu    sync.RWMutex
	twins map[string]storedTwin
	// ids is every device id, sorted, for device queries; nil when a
	// device was created or deleted since it was built.
	ids []string
	// orphans are deleted devices whose stored twin could not be removed:
	// removed when a device of that id is created again.
	orphans map[string]bool
}

type storedTwin struct {
	t   *twin.Twin
	rev uint64
}

func (c *twinCache) lock(id string) *sync.Mutex {
	return &c.locks[maphash.String(c.seed, id)%twinLocks]
}

// loadTwins fills the cache from the store; twins of devices that are
// gone (a delete whose twin removal failed) are removed now.
func (r *Registry) loadTwins(ctx context.Context) error {
	r.twins.seed = maphash.MakeSeed()
	r.twins.twins = map[string]storedTwin{}
	r.twins.orphans = map[string]bool{}
	stored, err := r.store.ListTwins(ctx)
	if err != nil {
		return fmt.Errorf("registry: loading twins: %w", err)
	}
	for _, st := range stored {
		if _, ok := r.devices[st.DeviceID]; !ok {
			if err := r.store.DeleteTwin(ctx, st.DeviceID); err != nil {
				return fmt.Errorf("registry: removing the twin of deleted device %s: %w", st.DeviceID, err)
			}
			continue
		}
		t, err := twin.Unmarshal(st.Doc)
		if err != nil {
			return fmt.Errorf("registry: the stored twin of device %s (revision %d) is corrupt: %w", st.DeviceID, st.Revision, err)
		}
		r.twins.twins[st.DeviceID] = storedTwin{t, st.Revision}
	}
	return nil
}

// Twin returns the device's twin (read-only: never modify it) and false if
// there is no such device. It does no I/O.
func (r *Registry) Twin(id string) (*twin.Twin, bool) {
	r.mu.RLock()
	d, ok := r.devices[id]
	r.mu.RUnlock()
	if !ok {
		return nil, false
	}
	r.twins.mu.RLock()
	st, stored := r.twins.twins[id]
	r.twins.mu.RUnlock()
	if !stored {
		return r.newTwin(d), true
	}
	return st.t, true
}

// newTwin is the twin of a device that was never written: IoT Hub's empty
// twin, its metadata dated at the device's creation.
func (r *Registry) newTwin(d Device) *twin.Twin {
	return twin.New(generationTime(d.GenerationID))
}

// UpdateTwin changes a device's twin with update, which gets a copy to
// modify and returns the desired-properties push (nil if desired did not
// change). An error from update (a *twin.Error) leaves the twin as it
// was. The result is the twin as stored.
func (r *Registry) UpdateTwin(ctx context.Context, id string, update func(t *twin.Twin) (desired []byte, err error)) (*twin.Twin, error) {
	l := r.twins.lock(id)
	l.Lock()
	defer l.Unlock()
	for attempt := 1; ; attempt++ {
		cur, ok := r.Twin(id)
		if !ok {
			return nil, notFound(id)
		}
		r.twins.mu.RLock()
		rev := r.twins.twins[id].rev
		r.twins.mu.RUnlock()

		next := cur.Clone()
		desired, err := update(next)
		if err != nil {
			return nil, err
		}
		doc, err := next.Marshal()
		if err != nil {
			return nil, fmt.Errorf("registry: encoding the twin of %s: %w", id, err)
		}
		newRev, err := r.store.PutTwin(ctx, id, doc, rev)
		if errors.Is(err, ErrPreconditionFailed) && attempt < casRetries {
			// Another hub node wrote it: read it again, apply again.
			if err := r.reloadTwin(ctx, id); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("registry: writing the twin of %s: %w", id, err)
		}
		r.twins.mu.Lock()
		r.twins.twins[id] = storedTwin{next, newRev}
		r.twins.mu.Unlock()
		if r.opts.OnTwinChange != nil {
			r.opts.OnTwinChange(TwinChange{DeviceID: id, Twin: next, Desired: desired, DesiredVersion: next.Desired.Version})
		}
		return next, nil
	}
}

// reloadTwin replaces the cached twin with the stored one.
func (r *Registry) reloadTwin(ctx context.Context, id string) error {
	doc, rev, err := r.store.GetTwin(ctx, id)
	if errors.Is(err, ErrNotFound) {
		r.twins.mu.Lock()
		delete(r.twins.twins, id)
		r.twins.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("registry: reading the twin of %s: %w", id, err)
	}
	t, err := twin.Unmarshal(doc)
	if err != nil {
		return fmt.Errorf("registry: the stored twin of device %s (revision %d) is corrupt: %w", id, rev, err)
	}
	r.twins.mu.Lock()
	r.twins.twins[id] = storedTwin{t, rev}
	r.twins.mu.Unlock()
	return nil
}

// dropTwin removes a deleted device's twin from the store and the cache.
// The caller holds writeMu; the twin's lock orders it after a write in
// progress.
func (r *Registry) dropTwin(ctx context.Context, id string) error {
	l := r.twins.lock(id)
	l.Lock()
	defer l.Unlock()
	r.twins.mu.Lock()
	_, cached := r.twins.twins[id]
	delete(r.twins.twins, id)
	r.twins.ids = nil
	r.twins.mu.Unlock()
	if !cached {
		return nil
	}
	if err := r.store.DeleteTwin(ctx, id); err != nil {
		r.twins.mu.Lock()
		r.twins.orphans[id] = true
		r.twins.mu.Unlock()
		return fmt.Errorf("registry: device %s deleted, but removing its twin failed (it is removed when the id is used again or at the next start): %w", id, err)
	}
	return nil
}

// deviceAdded forgets the sorted id list and removes a twin a deleted
// device of the same id left behind. The caller holds writeMu.
func (r *Registry) deviceAdded(ctx context.Context, id string) error {
	r.twins.mu.Lock()
	r.twins.ids = nil
	orphan := r.twins.orphans[id]
	r.twins.mu.Unlock()
	if !orphan {
		return nil
	}
	if err := r.store.DeleteTwin(ctx, id); err != nil {
		return fmt.Errorf("registry: removing the twin a deleted device %s left behind: %w", id, err)
	}
	r.twins.mu.Lock()
	delete(r.twins.orphans, id)
	r.twins.mu.Unlock()
	return nil
}

// DeviceIDs returns every device id, sorted (shared: do not modify). It
// is rebuilt only after devices were created or deleted.
func (r *Registry) DeviceIDs() []string {
	r.twins.mu.RLock()
	ids := r.twins.ids
	r.twins.mu.RUnlock()
	if ids != nil {
		return ids
	}
	r.mu.RLock()
	ids = make([]string, 0, len(r.devices))
	for id := range r.devices {
		ids = append(ids, id)
	}
	r.mu.RUnlock()
	slices.Sort(ids)
	r.twins.mu.Lock()
	r.twins.ids = ids
	r.twins.mu.Unlock()
	return ids
}

// TwinInfo is the device part of a served twin: the cached identity with
// its connection fields; false if there is no such device. No I/O.
func (r *Registry) TwinInfo(id string) (twin.DeviceInfo, bool) {
	r.mu.RLock()
	d, ok := r.devices[id]
	r.mu.RUnlock()
	if !ok {
		return twin.DeviceInfo{}, false
	}
	d = r.withLiveState(d)
	info := twin.DeviceInfo{
		DeviceID: d.DeviceID, DeviceETag: d.ETag, Status: string(d.Status),
		StatusUpdateTime: d.StatusUpdatedTime, ConnectionState: d.ConnectionState,
		LastActivityTime: d.LastActivityTime, CloudToDeviceMessageCount: d.CloudToDeviceMessageCount,
		AuthenticationType: d.Authentication.Type, IoTEdge: d.Capabilities.IoTEdge,
	}
	if d.StatusReason != nil {
		info.StatusReason = *d.StatusReason
	}
	if p := d.Authentication.X509Thumbprint.PrimaryThumbprint; p != nil {
		info.PrimaryThumbprint = *p
	}
	if p := d.Authentication.X509Thumbprint.SecondaryThumbprint; p != nil {
		info.SecondaryThumbprint = *p
	}
	return info, true
}

// ScanTwins calls fn with each device's stored twin (nil for a device
// whose twin was never written: Twin gives its empty twin) and device
// fields, in device-id order, starting after the id after ("" = from the
// first), until fn returns false. It is the source of device queries; it
// does no I/O and allocates nothing per device itself.
func (r *Registry) ScanTwins(after string, fn func(id string, stored *twin.Twin, info twin.DeviceInfo) bool) {
	ids := r.DeviceIDs()
	i, found := slices.BinarySearch(ids, after)
	if found {
		i++
	}
	for _, id := range ids[i:] {
		info, ok := r.TwinInfo(id)
		if !ok {
			continue // deleted since the list was made
		}
		r.twins.mu.RLock()
		st := r.twins.twins[id]
		r.twins.mu.RUnlock()
		if !fn(id, st.t, info) {
			return
		}
	}
}
