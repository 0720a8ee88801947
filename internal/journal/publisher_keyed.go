package journal

// Keyed publishes: a message with a Key is sent only once every earlier
// message with that key is finished (stored, or given up on), so a
// publish that is not answered — its stream leader stepped down or was
// killed with it in flight, or the journal is slow — holds the same key's
// later messages back until its retry is stored. Without that, a device's
// newer events were stored while its unanswered DeviceConnected waited for
// its retry, and the stream held them out of sequence order (webhooks and
// metrics follow the stream's order). A hand-over of the device to another
// node waits for its end to be stored (internal/cluster), which is now
// behind everything before it, so the order holds across nodes too.
//
// At most one message per key is in flight, which costs nothing in
// practice: a device's connection events are already one at a time (a
// CONNACK waits for its connect to be stored, a takeover for the previous
// session's end). Telemetry has no key and takes none of this path.

// hold reports whether m must wait behind an unfinished message with its
// key; if so it is queued. Otherwise m's key is marked busy until m is
// finished.
func (p *Publisher) hold(m Msg) bool {
	p.kmu.Lock()
	defer p.kmu.Unlock()
	q, busy := p.keys[m.Key]
	if busy {
		p.keys[m.Key] = append(q, m)
		return true
	}
	p.keys[m.Key] = nil
	return false
}

// unhold is called once the message that held key busy is finished: the
// next message waiting behind it (which took its window slot when it was
// dequeued) is sent, or the key is free.
func (p *Publisher) unhold(key string) {
	p.kmu.Lock()
	q := p.keys[key]
	if len(q) == 0 {
		delete(p.keys, key)
		p.kmu.Unlock()
		return
	}
	m := q[0]
	q[0] = Msg{}
	p.keys[key] = q[1:]
	p.kmu.Unlock()
	p.transmit(m)
}
