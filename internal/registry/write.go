package registry

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// casRetries bounds how often an unconditional write (If-Match "*" or
// none) re-reads and retries after losing a race with another hub node.
const casRetries = 3

// Create registers a new device. Empty status means enabled; empty keys of
// a SAS device are generated. caller is the policy that authorised the write (for Change).
func (r *Registry) Create(ctx context.Context, d Device, caller string) (Device, error) {
	d = d.Clone()
	if err := normalize(&d); err != nil {
		return Device{}, err
	}
	now := r.opts.Now().UTC()
	if d.Status == "" {
		d.Status = Enabled
	}
	if k := &d.Authentication.SymmetricKey; d.Authentication.Type == AuthSAS {
		if k.PrimaryKey == "" {
			k.PrimaryKey = NewKey()
		}
		if k.SecondaryKey == "" {
			k.SecondaryKey = NewKey()
		}
	}
	d.GenerationID = newGenerationID(now)
	d.StatusUpdatedTime = zeroTime // IoT Hub leaves it at 0001-01-01 until the status changes

	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	rev, err := r.store.Create(ctx, d)
	switch {
	case errors.Is(err, ErrExists):
		return Device{}, alreadyExists(d.DeviceID)
	case err != nil:
		return Device{}, fmt.Errorf("registry: creating device %s: %w", d.DeviceID, err)
	}
	d.ETag = ETag(rev)
	r.committed(OpCreated, d, d, caller, now)
	if err := r.deviceAdded(ctx, d.DeviceID); err != nil {
		return Device{}, err
	}
	return r.withLiveState(d), nil
}

// Replace overwrites an existing device (PUT with If-Match). ifMatch is
// "*" or "" for unconditional, else the etag the caller read, quoted or
// not. deviceId, generationId and the read-only fields cannot change; an
// empty status or key keeps the current one.
func (r *Registry) Replace(ctx context.Context, d Device, ifMatch, caller string) (Device, error) {
	d = d.Clone()
	if err := normalize(&d); err != nil {
		return Device{}, err
	}
	want := unquoteETag(ifMatch)
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	for attempt := 1; ; attempt++ {
		cur, rev, err := r.current(ctx, d.DeviceID, want)
		if err != nil {
			return Device{}, err
		}
		now := r.opts.Now().UTC()
		next := merge(cur, d, now)
		newRev, err := r.store.Update(ctx, next, rev)
		if err != nil {
			if final := r.writeFailure(err, d.DeviceID, want, attempt); final != nil {
				return Device{}, final
			}
			continue
		}
		next.ETag = ETag(newRev)
		r.committed(OpUpdated, next, next, caller, now)
		return r.withLiveState(next), nil
	}
}

// Delete removes a device; ifMatch as for Replace.
func (r *Registry) Delete(ctx context.Context, id, ifMatch, caller string) error {
	want := unquoteETag(ifMatch)
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	for attempt := 1; ; attempt++ {
		cur, rev, err := r.current(ctx, id, want)
		if err != nil {
			return err
		}
		if err := r.store.Delete(ctx, id, rev); err != nil {
			if final := r.writeFailure(err, id, want, attempt); final != nil {
				return final
			}
			continue
		}
		r.committed(OpDeleted, Device{DeviceID: id}, cur, caller, r.opts.Now().UTC())
		return r.dropTwin(ctx, id)
	}
}

// current reads the stored device and checks it against the If-Match etag.
func (r *Registry) current(ctx context.Context, id, want string) (Device, uint64, error) {
	cur, rev, err := r.store.Get(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return Device{}, 0, notFound(id)
	case err != nil:
		return Device{}, 0, fmt.Errorf("registry: reading device %s: %w", id, err)
	}
	if want != "" && want != "*" && want != cur.ETag {
		return Device{}, 0, preconditionFailed("device '%s' has etag \"%s\", not \"%s\": it changed since you read it; read it again and retry", id, cur.ETag, want)
	}
	return cur, rev, nil
}

// writeFailure classifies a failed conditional store write: nil means
// "read again and retry" (an unconditional write that lost a race).
func (r *Registry) writeFailure(err error, id, want string, attempt int) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return notFound(id)
	case errors.Is(err, ErrPreconditionFailed):
		if (want == "" || want == "*") && attempt < casRetries {
			return nil
		}
		return preconditionFailed("device '%s' was changed by another writer at the same time; read it again and retry", id)
	}
	return fmt.Errorf("registry: writing device %s: %w", id, err)
}

// merge applies the writable fields of in over cur.
func merge(cur, in Device, now time.Time) Device {
	next := in
	next.GenerationID = cur.GenerationID
	if next.Status == "" {
		next.Status = cur.Status
	}
	next.StatusUpdatedTime = cur.StatusUpdatedTime
	if next.Status != cur.Status {
		next.StatusUpdatedTime = now
	}
	if next.Authentication.Type != AuthSAS {
		return next
	}
	// A SAS device keeps the keys it is not given; one that was X.509
	// until now has none to keep, so it gets new ones.
	k, ck := &next.Authentication.SymmetricKey, cur.Authentication.SymmetricKey
	if k.PrimaryKey == "" {
		k.PrimaryKey = ck.PrimaryKey
	}
	if k.SecondaryKey == "" {
		k.SecondaryKey = ck.SecondaryKey
	}
	if k.PrimaryKey == "" {
		k.PrimaryKey = NewKey()
	}
	if k.SecondaryKey == "" {
		k.SecondaryKey = NewKey()
	}
	return next
}

// committed updates the cache after a store write and reports the change.
// after is the cached state (DeviceID only for deletes); reported is the
// device the Change carries. The caller holds writeMu.
func (r *Registry) committed(op Op, after, reported Device, caller string, now time.Time) {
	r.mu.Lock()
	if op == OpDeleted {
		r.setDevice(after.DeviceID, nil)
	} else {
		c := after.Clone()
		r.setDevice(after.DeviceID, &c)
	}
	r.mu.Unlock()
	if r.opts.OnChange == nil {
		return
	}
	d := reported.Clone()
	keys := Fingerprints(d.Authentication.SymmetricKey)
	d.Authentication.SymmetricKey = SymmetricKey{} // the journal never holds secrets
	r.opts.OnChange(Change{
		Keys:     &keys,
		ID:       newChangeID(),
		Op:       op,
		Time:     now,
		Hub:      r.opts.HubName,
		DeviceID: d.DeviceID,
		Device:   d,
		Caller:   caller,
	})
}
