package registry

// Counts returns how many devices the registry holds and how many of them
// are enabled (from the cache: no I/O; for the metrics sampler).
func (r *Registry) Counts() (total, enabled int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, d := range r.devices {
		if d.Status != Disabled {
			enabled++
		}
	}
	return len(r.devices), enabled
}
