package registry

import (
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/tether-hub/tether/internal/twin"
)

// Apply puts a device another hub node of a cluster wrote into this
// registry's cache (d nil: it was deleted). The value comes from the
// store's change feed rather than a read, which a replica still behind
// could answer with the old one. A change older than the cached one
// (rev below its ETag's) is ignored.
func (r *Registry) Apply(id string, d *Device, rev uint64) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.Lock()
	cur, had := r.devices[id]
	if had && etagRevision(cur.ETag) > rev {
		r.mu.Unlock()
		return
	}
	if d == nil {
		r.setDevice(id, nil)
	} else {
		c := d.Clone()
		c.ETag = ETag(rev)
		r.setDevice(id, &c)
	}
	r.mu.Unlock()
	if had != (d != nil) {
		r.twins.mu.Lock()
		r.twins.ids = nil
		if d == nil {
			delete(r.twins.twins, id)
		}
		r.twins.mu.Unlock()
	}
}

// ApplyTwin puts a twin another node wrote (doc at rev) into the cache.
func (r *Registry) ApplyTwin(id string, doc []byte, rev uint64) error {
	l := r.twins.lock(id)
	l.Lock()
	defer l.Unlock()
	t, err := twin.Unmarshal(doc)
	if err != nil {
		return fmt.Errorf("registry: the twin of device %s (revision %d) is corrupt: %w", id, rev, err)
	}
	r.twins.mu.Lock()
	if cur, ok := r.twins.twins[id]; !ok || cur.rev < rev {
		r.twins.twins[id] = storedTwin{t, rev}
	}
	r.twins.mu.Unlock()
	return nil
}

// etagRevision is the revision an ETag was made from (0 if none).
func etagRevision(etag string) uint64 {
	b, err := base64.StdEncoding.DecodeString(etag)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(string(b), 10, 64)
	return n
}
