package sim

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tether-hub/tether/internal/hubclient"
	"github.com/tether-hub/tether/internal/mqttclient"
	"github.com/tether-hub/tether/internal/sas"
)

// device is one simulated device (or the twin of a duplicate-id pair).
// Everything but the ledger and the counters is owned by its goroutine.
type device struct {
	f       *fleet
	idx     int
	id, key string
	twin    bool
	hasTwin bool
	rnd     *rand.Rand
	src     net.IP
	ws      bool
	plan    plan
	startAt time.Duration

	nextStep  int                         // index into plan.steps
	rateNext  map[FaultKind]time.Duration // next time of each rate fault
	disabled  *atomic.Bool                // the simulator disabled it in the registry (shared with the twin)
	gaveUp    bool                        // the SDK stopped retrying
	connected bool
	tw        *twinClient // twin and methods (nil when both are off)
	sc        *scPlan     // the scenario the device plays (nil: healthy)
	// moved is how many nodes on the device went (a connect failed: the
	// node is down); dialed is the address of its last connect (the
	// session's; a bad attempt's dial, from another goroutine, does not
	// set it). moved is read by those dials too.
	moved  atomic.Int32
	dialed string
}

// end is how a session ended.
type end int

const (
	endStop          end = iota // the run ended (DISCONNECT sent)
	endRenewal                  // renewal: DISCONNECT sent, reconnect now
	endRenewalForced            // renewal whose close the hub did not finish in 30 s
	endDropped                  // the simulator dropped it (drop, storm)
	endClosed                   // the hub closed it
)

func (d *device) expect(k Kind, result string, c Cause) {
	alt := ""
	if d.hasTwin && k == KindDisconnected && result != ResultTakeover {
		alt = ResultTakeover
	}
	d.f.ledger.expect(d.idx, k, result, c, alt)
}

func (d *device) keepAlive() time.Duration {
	if d.plan.silent {
		return d.f.cfg.SilenceKeepAlive
	}
	return d.f.prof.KeepAlive
}

// run is the device's life: wait for its ramp slot, then connect, run a
// session, and reconnect the way the profile does, until the run ends.
func (d *device) run() {
	defer d.f.wg.Done()
	f := d.f
	if !f.sleep(d.startAt - f.since()) {
		return
	}
	d.rateNext = map[FaultKind]time.Duration{}
	for _, rf := range d.plan.rates {
		d.rateNext[rf.Kind] = nextRate(rf, f.since(), d.rnd)
	}
	cause := CauseConnect
	if d.plan.slow {
		cause = CauseSlowTLS
	}
	attempt := 0
	// The first connect may be marked a renewal too: the hub cannot tell
	// a new run from a reconnect when an earlier run's session of this
	// device ended with DISCONNECT less than 2 minutes ago.
	renewal, unsure := false, true
	for !f.stopped() {
		if !f.paced() {
			return
		}
		tried := time.Now()
		conn, tokenExp, err := d.connect()
		if err != nil {
			d.connectFailed(err, cause, tried)
			attempt++
			f.stats.Retries.Add(1)
			if d.gaveUp {
				if !d.idleWhileGivenUp() {
					return
				}
				attempt = 0
			}
			if !d.waitBackoff(attempt) {
				return
			}
			if cause == CauseConnect || cause == CauseSlowTLS {
				cause = CauseRetry
			}
			continue // a renewal stays one through retries (the hub marks it so within 2 min)
		}
		// Connect latency counts from the CONNECT: the hub may deliver
		// the event before this process has read its CONNACK.
		d.f.ledger.add(Expect{Device: int32(d.idx), Kind: KindConnected, Cause: cause, At: conn.ConnectSent.UnixNano(), Renewal: renewal, RenewalUnsure: unsure})
		f.stats.Connects.Add(1)
		f.stats.Connected.Add(1)
		if renewal {
			f.stats.Renewals.Add(1)
		}
		began := time.Now()
		how, why := d.session(conn, tokenExp)
		f.stats.Connected.Add(-1)
		f.stats.Disconnects.Add(1)
		renewal, unsure = false, false
		switch how {
		case endStop:
			return
		case endRenewal:
			cause, renewal, attempt = CauseRenewal, true, 0
			continue
		case endRenewalForced:
			// Whether the hub marks the reconnect a renewal depends on
			// whether it read the DISCONNECT first.
			cause, renewal, unsure, attempt = CauseRenewal, true, true, 0
			continue
		}
		if time.Since(began) >= f.cfg.StableAfter {
			attempt = 0
		}
		attempt++
		cause = why
		if why == CauseRenewal { // token expiry (RenewOnExpiry): the SDK reconnects with a new token
			renewal = true
		}
		if !d.waitBackoff(attempt) {
			return
		}
	}
}

// idleWhileGivenUp keeps handling the device's fault steps while the SDK
// has given up; an enable after a disable restarts the client (true).
func (d *device) idleWhileGivenUp() bool {
	d.f.stats.GaveUp.Add(1)
	for d.gaveUp {
		if !d.waitBackoff(0) {
			return false
		}
	}
	d.f.stats.GaveUp.Add(-1)
	return true
}

// waitBackoff sleeps the profile's delay for retry attempt, handling
// fault steps that fall due meanwhile. It reports false when the run
// ended.
func (d *device) waitBackoff(attempt int) bool {
	f := d.f
	var wait time.Duration
	if attempt > 0 {
		wait = f.prof.Backoff(attempt, d.rnd)
	} else {
		wait = time.Second
	}
	until := f.since() + wait
	for {
		next, ok := d.nextAction()
		if !ok || next > until {
			return f.sleep(until - f.since())
		}
		if !f.sleep(next - f.since()) {
			return false
		}
		d.act(nil)
	}
}

// connect dials with a fresh token. The hard context, not the stop
// signal, bounds it: a CONNECT in flight at the end is answered and then
// ended with DISCONNECT, so the hub's record matches the ledger.
func (d *device) connect() (*mqttclient.Conn, time.Time, error) {
	f := d.f
	exp := d.clock().Add(d.tokenTTL())
	tok, err := sas.Sign(sas.DeviceResource(f.cfg.HubName, d.id), d.key, "", exp)
	if err != nil {
		return nil, exp, err
	}
	d.dialed = d.addr()
	conn, err := d.dial(tok)
	return conn, time.Unix(exp.Unix(), 0), err
}

func (d *device) username() string {
	return d.f.cfg.HubName + "/" + d.id + "/?api-version=" + hubclient.APIVersion +
		"&DeviceClientType=" + url.QueryEscape("tether-sim/1.0 ("+d.f.prof.Name+")")
}

func (d *device) dial(password string) (*mqttclient.Conn, error) {
	f := d.f
	ka := uint16(d.keepAlive() / time.Second)
	pkt := mqttclient.ConnectPacket(d.id, d.username(), password, ka, false)
	dl := mqttclient.Dialer{Addr: d.addr(), TLS: f.tls, Source: d.src, Timeout: 30 * time.Second}
	if t := f.nodeTLS[dl.Addr]; t != nil {
		dl.TLS = t
	}
	if d.ws {
		dl.Addr, dl.WebSocket = f.cfg.HTTPSAddr, true
	}
	if d.plan.slow {
		delay := f.cfg.SlowTLSDelay
		dl.Wrap = func(c net.Conn) net.Conn { return &slowConn{Conn: c, delay: delay / 2, left: 2} }
		dl.Timeout = max(dl.Timeout, delay+30*time.Second)
	}
	return dl.Dial(f.hard, pkt)
}

// addr is the MQTT address the device dials: with several (a cluster's
// nodes) device i uses the i-th in turn, and its dup copy the next one;
// a device whose node refused the TCP connection (down: killed, or
// stopped in a rolling restart), or that failed the connect for another
// reason than the device's credentials, goes on to the next node, as
// devices behind a load balancer would.
func (d *device) addr() string {
	as := d.f.cfg.MQTTAddrs
	if len(as) == 0 {
		return d.f.cfg.MQTTAddr
	}
	k := d.idx + int(d.moved.Load())
	if d.twin {
		k++
	}
	return as[k%len(as)]
}

// connectFailed records what the hub should log for a failed connect
// (tried when it began).
func (d *device) connectFailed(err error, cause Cause, tried time.Time) {
	f := d.f
	f.stats.countError(err)
	var ce mqttclient.ConnackError
	var de *mqttclient.DialError
	switch {
	case errors.As(err, &ce) && byte(ce) == 3:
		// Server unavailable: a throttle (the hub's new-connection rate
		// or the source address's: 429001; the device's own connects:
		// 429005), answered after the CONNECT (WebSockets, plain TCP).
		f.stats.Throttled.Add(1)
		alt := ResultDevThrottled
		if len(f.cfg.MQTTAddrs) > 1 {
			// A cluster node also answers 3 when it cannot settle who
			// holds the device (the owners bucket did not answer: an
			// election, an overloaded node), and logs 500001.
			alt += "|" + ResultServerError
		}
		if f.nodeDown(d.dialed, tried, time.Now()) {
			// A node stopping answers 3 too (the hub is shutting down);
			// like any refusal, only once its record is stored (a node
			// that cannot store it any more closes without an answer).
			f.ledger.expect(d.idx, KindRefused, ResultServerError, CauseNodeStop, ResultThrottled)
			break
		}
		d.f.ledger.expect(d.idx, KindRefused, ResultThrottled, CauseThrottled, alt)
	case errors.As(err, &ce):
		c := CauseUnexplained
		if d.disabled.Load() {
			c = CauseDisabled
		}
		d.expect(KindRefused, ResultUnauthorized, c)
		if !f.prof.RetryUnauthorized {
			d.gaveUp = true
		}
	case f.outageOf(d.dialed, tried, time.Now()) != nil:
		if !connectSent(err) {
			// Cut before the CONNECT (in the TCP or TLS handshake) by
			// the kill or stop, not refused: the hub records nothing (a
			// stopping broker records no failed handshakes), unless the
			// handshake had run past the hub's connect timeout before:
			// then it may have logged a connect timeout (500008, no
			// device id) first.
			if time.Since(tried) >= f.cfg.HubConnectTimeout {
				f.ledger.add(Expect{Device: -1, Kind: KindTimeout, Result: ResultTimeout, Cause: f.outageOf(d.dialed, tried, time.Now()).cause(), At: time.Now().UnixNano(), Maybe: true})
			}
			break
		}
		// A CONNECT in flight when the hub (or the node) was killed or
		// stopped: it may have stored the connect first (then that
		// session is recorded ended as the outage ends sessions) or not.
		o := f.outageOf(d.dialed, tried, time.Now())
		result, alt, c := o.ended(ResultOK)
		at := tried.UnixNano()
		f.ledger.add(Expect{Device: int32(d.idx), Kind: KindConnected, Cause: c, At: at, Maybe: true, RenewalUnsure: true})
		f.ledger.add(Expect{Device: int32(d.idx), Kind: KindDisconnected, Result: result, Alt: alt, Cause: c, At: at, Maybe: true})
	case time.Since(tried) >= f.cfg.HubConnectTimeout && errors.As(err, &de) && (de.Phase == mqttclient.PhaseTLS || de.Phase == mqttclient.PhaseConnack):
		// The hub closed a connection that did not finish its handshake
		// and CONNECT in its connect timeout (a slow client, or a hub
		// too busy to finish them): 500008, no device id.
		c := CauseRetry
		if d.plan.slow {
			c = CauseSlowTLS
		}
		f.ledger.add(Expect{Device: -1, Kind: KindTimeout, Result: ResultTimeout, Cause: c, At: time.Now().UnixNano()})
	case errors.As(err, &de) && de.Phase == mqttclient.PhaseTLS && !d.ws && closedEarly(err):
		// Closed before the TLS handshake: a throttle of the hub refused
		// the connection where it could not answer (429001, no device id).
		f.stats.Throttled.Add(1)
		f.ledger.add(Expect{Device: -1, Kind: KindRefused, Result: ResultThrottled, Cause: CauseThrottled, At: time.Now().UnixNano()})
	}
	if len(f.cfg.MQTTAddrs) > 1 && !(errors.As(err, &ce) && byte(ce) != 3) {
		// A node down (refused), stopping (closed during the handshake)
		// or unable to take the device (3): try the next one.
		d.moved.Add(1)
	}
	_ = cause
}

// closedEarly: the hub closed or reset the connection (a refusal), as
// opposed to a timeout.
func closedEarly(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// connectSent reports whether a failed connect got as far as sending its
// CONNECT (the hub may have read it).
func connectSent(err error) bool {
	var de *mqttclient.DialError
	return errors.As(err, &de) && (de.Phase == mqttclient.PhaseConnect || de.Phase == mqttclient.PhaseConnack)
}

// nextAction is the time of the device's next fault step or rate fault.
func (d *device) nextAction() (time.Duration, bool) {
	best, ok := time.Duration(0), false
	if d.nextStep < len(d.plan.steps) {
		best, ok = d.plan.steps[d.nextStep].at, true
	}
	for _, t := range d.rateNext {
		if !ok || t < best {
			best, ok = t, true
		}
	}
	return best, ok
}

// act performs the fault that is due. conn is the open session (nil when
// offline); the returned end, if not nil, ends the session.
func (d *device) act(s *session) {
	f := d.f
	now := f.since()
	var kind FaultKind
	undo := false
	if d.nextStep < len(d.plan.steps) && d.plan.steps[d.nextStep].at <= now {
		st := d.plan.steps[d.nextStep]
		d.nextStep++
		kind, undo = st.kind, st.undo
	} else {
		for k, t := range d.rateNext {
			if t <= now {
				kind = k
				for _, rf := range d.plan.rates {
					if rf.Kind == k {
						d.rateNext[k] = nextRate(rf, now, d.rnd)
					}
				}
				break
			}
		}
	}
	switch kind {
	case "":
		return
	case FaultDisabled:
		d.setDisabled(!undo, s)
		return
	case FaultExpired, FaultWrongKey:
		f.stats.fault(kind)
		f.wg.Add(1)
		go d.badAttempt(kind)
		return
	}
	if s == nil {
		f.stats.FaultsSkipped.Add(1)
		return
	}
	f.stats.fault(kind)
	switch kind {
	case FaultDrop, FaultStorm:
		s.dropped = kind
	case FaultSilence:
		s.silent = true
		if d.tw != nil {
			d.tw.closing(true)
		}
	}
}

// setDisabled disables or re-enables the device in the registry.
func (d *device) setDisabled(on bool, s *session) {
	f := d.f
	if on {
		f.stats.fault(FaultDisabled)
	}
	d.disabled.Store(on) // before the call: the hub kicks the session during it
	if s != nil && on {
		s.disabling = true
		if d.tw != nil {
			d.tw.hubWillClose()
		}
	}
	ctx, cancel := context.WithTimeout(f.hard, 30*time.Second)
	defer cancel()
	dev := hubclient.Device{ID: d.id, PrimaryKey: d.key, SecondaryKey: DeviceKey(f.keySeed, d.id+"/secondary")}
	if err := f.api.SetStatus(ctx, dev, on); err != nil {
		f.stats.countError(errors.New("registry: " + err.Error()))
	}
	if !on && d.gaveUp {
		// The operator fixed the device; an app would restart its client.
		d.gaveUp = false
	}
}

// badAttempt is a second copy of the device connecting with a stale
// credential: an expired token or a token signed with a wrong key. The
// hub must refuse it (401003) and leave the device's session alone.
func (d *device) badAttempt(kind FaultKind) {
	defer d.f.wg.Done()
	f := d.f
	key, exp, cause := d.key, time.Now().Add(-time.Hour), CauseExpired
	if kind == FaultWrongKey {
		key, exp, cause = DeviceKey(f.keySeed, d.id+"/wrong"), time.Now().Add(f.prof.TokenTTL), CauseWrongKey
	}
	tok, err := sas.Sign(sas.DeviceResource(f.cfg.HubName, d.id), key, "", exp)
	if err != nil {
		return
	}
	conn, err := d.dial(tok)
	if err == nil {
		// Accepted: the hub took a stale credential. The ledger has no
		// connect for it, so the comparison shows it as unexpected.
		_ = conn.Disconnect()
		_ = conn.Close()
		return
	}
	var ce mqttclient.ConnackError
	if errors.As(err, &ce) {
		d.expect(KindRefused, ResultUnauthorized, cause)
		return
	}
	f.stats.countError(err)
}

// slowConn stretches the first writes (the TLS ClientHello and Finished)
// by delay each: a slow client.
type slowConn struct {
	net.Conn
	delay time.Duration
	left  int
}

func (c *slowConn) Write(p []byte) (int, error) {
	if c.left > 0 {
		c.left--
		time.Sleep(c.delay)
	}
	return c.Conn.Write(p)
}
