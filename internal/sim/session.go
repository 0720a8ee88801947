package sim

import (
	"time"

	"github.com/tether-hub/tether/internal/mqttclient"
)

// session is one open connection of a device.
type session struct {
	conn      *mqttclient.Conn
	dropped   FaultKind // drop or storm: close without DISCONNECT
	silent    bool      // silence fault: send nothing more
	lastSent  time.Time // the last packet written (the hub's keep-alive counts from it)
	disabling bool      // the device is being disabled: the hub will close
	began     time.Time // when the session was established
	addr      string    // the node it is on
}

// session runs one connection until it ends and records how. tokenExp is
// the token's se.
func (d *device) session(conn *mqttclient.Conn, tokenExp time.Time) (end, Cause) {
	f := d.f
	s := &session{conn: conn, lastSent: time.Now(), began: time.Now(), addr: d.dialed}
	readDone := make(chan error, 1)
	h := mqttclient.Handler{Puback: func(uint16) { f.stats.TelemetryAcked.Add(1) }}
	if d.tw != nil {
		h.Publish, h.Pingresp = d.tw.onPublish, d.tw.onPingresp
	}
	go func() { readDone <- conn.ReadLoop(h) }()
	if d.tw != nil {
		d.tw.begin(conn)
		defer d.tw.end()
	}

	// Timers: telemetry, keep-alive ping, renewal, next fault.
	never := time.Duration(1<<62 - 1)
	began := time.Now()
	tel := never
	if f.cfg.Telemetry > 0 {
		tel = time.Duration(d.rnd.Float64() * float64(f.cfg.Telemetry)) // spread over one interval
	}
	ping := d.keepAlive()
	renew := never
	if f.prof.RenewMode == RenewReconnect {
		renew = f.prof.RenewAfter(d.tokenTTL())
	}
	flapAt := never
	if d.sc != nil && d.sc.kind == ScenarioFlapping && !d.twin {
		flapAt = d.flapDelay() // the application restarts its client (scenario.go)
	}
	timer := time.NewTimer(never)
	defer timer.Stop()
	// Shortly before the token expires the hub will close the session
	// unless it is renewed first: the twin client stops counting on it.
	closeDue := never
	if d.tw != nil {
		closeDue = tokenExp.Add(-expiryMargin).Sub(began)
	}

	topic := "devices/" + d.id + "/messages/events/"
	closeWait := func() (forced bool) {
		// As the Node SDK: a graceful close not finished within 30 s is
		// forced.
		t := time.NewTimer(30 * time.Second)
		defer t.Stop()
		select {
		case <-readDone:
		case <-t.C: // the hub did not close after DISCONNECT: close anyway
			forced = true
			f.stats.ForcedCloses.Add(1)
			_ = conn.Close()
			<-readDone
		}
		_ = conn.Close()
		return forced
	}
	// disconnect ends the session with DISCONNECT and records it. If the
	// hub has not closed within 30 s the close is forced, and the hub may
	// then record the session as replaced by the next connect (400027).
	disconnect := func(c Cause) bool {
		if d.tw != nil {
			d.tw.closing(false)
		}
		at := time.Now()
		_ = conn.Disconnect()
		// The race with the token's expiry is judged by when the write
		// returned: on a loaded machine the DISCONNECT can leave seconds
		// after the decision (its lock, the write itself), and a hub that
		// closed the session for the expired token first was right to.
		sent := time.Now()
		forced := closeWait()
		e := Expect{Device: int32(d.idx), Kind: KindDisconnected, Result: ResultOK, Cause: c, At: at.UnixNano()}
		switch {
		case forced || d.hasTwin:
			e.Alt = ResultTakeover
		case sent.After(tokenExp.Add(-time.Second)):
			// Sent in the token's last second (a late renewal, or the
			// run's end): the hub may have closed the session for the
			// expired token before it read the DISCONNECT.
			e.Alt, e.ExpiryRace = ResultClosedRemotely, true
		}
		f.ledger.add(e)
		return forced
	}
	stopC := f.stop
	stopAt := never
	for {
		el := time.Since(began)
		next := min(tel, ping, stopAt)
		if !s.silent {
			next = min(next, renew)
		}
		if rep, ok := d.reportDue(); ok {
			next = min(next, rep-f.since()+el)
		}
		if closeDue < never {
			next = min(next, closeDue)
		}
		if at, ok := d.nextAction(); ok && stopC != nil {
			next = min(next, at-f.since()+el)
		}
		scDue := never
		if stopC != nil {
			scDue = d.scenarioDue(s, began, never, flapAt)
			next = min(next, scDue)
		}
		timer.Reset(max(0, next-el))
		select {
		case <-stopC:
			// The fleet leaves at the ramp rate, as it came: 10,000
			// DISCONNECTs in the same millisecond are not a fleet's end
			// but a test of its own.
			stopC = nil
			stopAt = time.Since(began) + time.Duration(float64(d.idx)/f.cfg.Ramp*float64(time.Second))
			continue
		case err := <-readDone:
			_ = conn.Close()
			return endClosed, d.closedByHub(s, err, tokenExp)
		case <-timer.C:
		}
		el = time.Since(began)
		switch {
		case el >= stopAt:
			disconnect(CauseStop)
			return endStop, CauseStop
		case el >= renew && !s.silent && time.Now().After(tokenExp.Add(-time.Second)):
			// The renewal is so late (an overloaded machine) that the hub
			// is closing the session for the expired token right now: let
			// it, and record that (a DISCONNECT now would race it).
			renew = never
			f.stats.LateRenewals.Add(1)
		case el >= renew && !s.silent: // a silent device is cut off: it cannot renew either
			if disconnect(CauseRenewal) {
				return endRenewalForced, CauseRenewal
			}
			return endRenewal, CauseRenewal
		case el >= tel:
			tel += f.cfg.Telemetry
			if !s.silent {
				if _, err := conn.Publish(topic, 1, f.payload); err == nil {
					f.stats.TelemetrySent.Add(1)
					s.lastSent = time.Now()
				}
			}
		case el >= ping:
			ping += d.keepAlive()
			if !s.silent {
				d.ping(conn)
				s.lastSent = time.Now()
			}
		case el >= closeDue:
			closeDue = never
			d.tw.hubWillClose()
		case el >= scDue:
			switch d.scenarioAct(s) {
			case scClose:
				if disconnect(CauseRenewal) {
					return endRenewalForced, CauseRenewal
				}
				return endRenewal, CauseRenewal
			case scDrop, scOut:
				if d.tw != nil {
					d.tw.closing(false)
				}
				_ = conn.Close()
				d.f.ledger.expect(d.idx, KindDisconnected, ResultClosedRemotely, CauseDrop, ResultTakeover)
				closeWait()
				if d.sc.kind == ScenarioMassDrop {
					f.sleep(massDropOffline) // the network is down
				}
				return endDropped, CauseDrop
			}
		case d.reportNow():
			if !s.silent {
				d.tw.report()
				s.lastSent = time.Now()
			}
		default:
			if at, ok := d.nextAction(); ok && at <= f.since() && stopC != nil {
				d.act(s)
				if s.dropped != "" {
					if d.tw != nil {
						d.tw.closing(false)
					}
					_ = conn.Close()
					cause := CauseDrop
					if s.dropped == FaultStorm {
						cause = CauseStorm
					}
					// If the reconnect (or a twin's connect) reaches the hub
					// before it notices the close, the hub rightly records
					// the old session as replaced (400027).
					d.f.ledger.expect(d.idx, KindDisconnected, ResultClosedRemotely, cause, ResultTakeover)
					closeWait()
					return endDropped, cause
				}
			}
		}
	}
}

// expiryMargin is how long before its token's expiry a session stops
// counting as ready for calls and pushes.
const expiryMargin = 2 * time.Second

// ping sends a keep-alive PINGREQ (through the twin client, which
// matches PINGRESPs to what they confirm).
func (d *device) ping(conn *mqttclient.Conn) {
	if d.tw != nil {
		_ = d.tw.ping()
		return
	}
	_ = conn.Ping()
}

// reportDue is when the next periodic reported patch is due (offset from
// the run's start), if the device reports periodically.
func (d *device) reportDue() (time.Duration, bool) {
	if d.tw == nil || !d.f.cfg.Twin || d.f.cfg.ReportedEvery <= 0 {
		return 0, false
	}
	return d.tw.nextReport, true
}

// reportNow reports whether a periodic reported patch is due, and if so
// moves the schedule past now (a device that was away reports once, not
// once per missed interval) and sweeps for timed-out requests.
func (d *device) reportNow() bool {
	at, ok := d.reportDue()
	now := d.f.since()
	if !ok || at > now {
		return false
	}
	for d.tw.nextReport <= now {
		d.tw.nextReport += d.f.cfg.ReportedEvery
	}
	d.tw.sweep()
	return true
}

// closedByHub records what the hub should report for a session it closed
// and returns the cause, which the reconnect carries.
func (d *device) closedByHub(s *session, err error, tokenExp time.Time) Cause {
	f := d.f
	now := time.Now()
	e := Expect{Device: int32(d.idx), Kind: KindDisconnected, At: now.UnixNano()}
	switch {
	case s.disabling || d.disabled.Load():
		e.Result, e.Cause = ResultUnauthorized, CauseDisabled
	case s.silent:
		// Whichever comes first: the keep-alive deadline (1.5 × keep-alive
		// after the last packet) or the token's expiry (a silent device
		// renews nothing).
		e.Result, e.Cause = ResultClosedRemotely, CauseSilence
		if tokenExp.Before(s.lastSent.Add(d.keepAlive() * 3 / 2)) {
			e.Cause, e.TokenExpiry = CauseRenewal, true
		}
	case !now.Before(tokenExp.Add(-2 * time.Second)):
		e.Result, e.Cause, e.TokenExpiry = ResultClosedRemotely, CauseRenewal, true
	case d.hasTwin:
		e.Result, e.Cause = ResultTakeover, CauseTakeover
	default:
		e.Result, e.Cause = ResultClosedRemotely, CauseUnexplained
		f.stats.countError(err)
	}
	if d.hasTwin && e.Result != ResultTakeover {
		e.Alt = ResultTakeover
	}
	if o := f.outageOf(s.addr, s.began, now); o != nil {
		// The hub (or the session's node) was killed or stopped with the
		// session open: one record, as the outage ends sessions (ended).
		// What the close would otherwise have been stays the alternative:
		// the hub may have stored that just before.
		e.Result, e.Alt, e.Cause = o.ended(e.Result)
		e.TokenExpiry = false
	}
	f.ledger.add(e)
	return e.Cause
}
