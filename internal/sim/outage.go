package sim

import "time"

// outage is the hub, or one node of a cluster, going away during the run:
// killed (the hub-crash fault: SIGKILL, no clean shutdown) or stopped (a
// rolling restart's graceful stop). A session or a connect in flight on
// that address when it began ended because of it, and the hub records
// that end in its own way (outage.expect).
type outage struct {
	addr  string    // the node's MQTT address; "" for the one hub
	at    time.Time // when the kill or the stop began
	back  time.Time // a stop's: when the node was back (zero until then)
	crash bool
}

// crashNode is the address of the node the hub-crash fault kills in a
// cluster (the last of MQTTAddrs), "" for a single hub.
func (c *Config) crashNode() string {
	if len(c.MQTTAddrs) > 1 {
		return c.MQTTAddrs[len(c.MQTTAddrs)-1]
	}
	return ""
}

// outageOf returns the outage that something on addr, open from began to
// end, lived through, if any: open at the kill, or, for a stop, at any
// time from the stop's beginning until the node was back (a node that
// is stopping may still take a connection, and then close it too).
func (f *fleet) outageOf(addr string, began, end time.Time) *outage {
	f.outMu.Lock()
	defer f.outMu.Unlock()
	for i := range f.outages {
		o := &f.outages[i]
		if o.addr != "" && o.addr != addr || end.Before(o.at) {
			continue
		}
		// A kill comes a moment after its planned time (o.at): a session
		// that began on the node in that moment was open at the kill.
		if began.Before(o.at) || o.crash && began.Before(o.at.Add(killSlack)) || !o.crash && (o.back.IsZero() || began.Before(o.back)) {
			return o
		}
	}
	return nil
}

// killSlack is how long after its planned time a kill may come (the
// harness's SIGKILL is sent then; a killed node is not back for seconds).
const killSlack = time.Second

// stopping adds a rolling restart's stop of the node at addr, beginning
// now.
func (f *fleet) stopping(addr string) {
	f.outMu.Lock()
	f.outages = append(f.outages, outage{addr: addr, at: time.Now()})
	f.outMu.Unlock()
}

// restarted notes that the node at addr, stopped last, is back.
func (f *fleet) restarted(addr string) {
	f.outMu.Lock()
	defer f.outMu.Unlock()
	for i := len(f.outages) - 1; i >= 0; i-- {
		if o := &f.outages[i]; o.addr == addr && !o.crash {
			o.back = time.Now()
			return
		}
	}
}

// nodeDown reports whether the node at addr was being stopped or started
// again (a rolling restart's) at some time between from and to: a
// refusal it answered then is its stop's.
func (f *fleet) nodeDown(addr string, from, to time.Time) bool {
	f.outMu.Lock()
	defer f.outMu.Unlock()
	for _, o := range f.outages {
		if !o.crash && o.addr == addr && !to.Before(o.at) && (o.back.IsZero() || from.Before(o.back)) {
			return true
		}
	}
	return false
}

// cause is what the simulator calls the outage.
func (o *outage) cause() Cause {
	if o.crash {
		return CauseHubCrash
	}
	return CauseNodeStop
}

// ended is what the hub records for a session the outage ended, given
// what the device's side would otherwise expect (result): the result,
// the alternative it may rightly report instead, and the cause.
//
//   - The one hub killed: when it is back it records the session closed
//     500001 (hub-restart); it may have stored the other end just before
//     it died.
//   - A cluster node killed: a surviving node records it 404104
//     (node-lost) within the lease, or the node itself 500001
//     (hub-restart) if it is back first.
//   - A cluster node stopped: it closes its sessions and records them
//     ended by its shutdown (server-shutdown, no error code); the other
//     end may have come first.
func (o *outage) ended(result string) (string, string, Cause) {
	switch {
	case o.crash && o.addr == "":
		return ResultServerError, result, CauseHubCrash
	case o.crash && result == ResultTakeover:
		// A device with a duplicate-id twin: the twin's connect elsewhere
		// may have taken the session over before the kill was noticed.
		return ResultClosedRemotely, ResultTakeover, CauseHubCrash
	case o.crash:
		return ResultClosedRemotely, ResultServerError, CauseHubCrash
	}
	return ResultOK, result, CauseNodeStop
}
