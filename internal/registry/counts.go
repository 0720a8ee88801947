package registry

// Counts returns how many devices the registry holds and how many of them
// are enabled (no I/O, no walk over the devices: the metrics sampler asks
// every second, and walking 10,000 devices was most of an idle hub's
// sampling).
func (r *Registry) Counts() (total, enabled int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.devices), len(r.devices) - r.disabled
}

// setDevice caches d as device id (nil: removes it) and keeps the count
// of disabled devices. r.mu is held for writing.
func (r *Registry) setDevice(id string, d *Device) {
	if cur, ok := r.devices[id]; ok && cur.Status == Disabled {
		r.disabled--
	}
	if d == nil {
		delete(r.devices, id)
		return
	}
	if d.Status == Disabled {
		r.disabled++
	}
	r.devices[id] = *d
}
