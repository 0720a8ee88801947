package registry

import (
	"context"
	"errors"
	"fmt"
)

// Refresh re-reads a device from the store into the registry's cache,
// or drops it if the store no longer has it: another hub node of a
// cluster wrote it (that node journalled the change). It reports the
// device as now stored and whether it exists.
func (r *Registry) Refresh(ctx context.Context, id string) (Device, bool, error) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	d, rev, err := r.store.Get(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		r.mu.Lock()
		_, had := r.devices[id]
		delete(r.devices, id)
		r.mu.Unlock()
		if had {
			r.twins.mu.Lock()
			delete(r.twins.twins, id)
			r.twins.ids = nil
			r.twins.mu.Unlock()
		}
		return Device{}, false, nil
	case err != nil:
		return Device{}, false, fmt.Errorf("registry: reading device %s: %w", id, err)
	}
	d.ETag = ETag(rev)
	r.mu.Lock()
	_, had := r.devices[id]
	r.devices[id] = d.Clone()
	r.mu.Unlock()
	if !had {
		r.twins.mu.Lock()
		r.twins.ids = nil
		r.twins.mu.Unlock()
	}
	return d, true, nil
}

// RefreshTwin re-reads a device's twin from the store into the cache
// (another node of a cluster wrote it).
func (r *Registry) RefreshTwin(ctx context.Context, id string) error {
	l := r.twins.lock(id)
	l.Lock()
	defer l.Unlock()
	return r.reloadTwin(ctx, id)
}
