package broker

import (
	"fmt"
	"math"
	"net"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/throttle"
)

// Throttling (Options.Throttle; internal/throttle says what each limit
// is). A connection to the MQTT/TLS port is judged before its handshake:
// on the accept loop its source address and the hub-wide rate (so a
// refusal costs no goroutine and no session), then, on its connect
// goroutine, its turn under the rate (a bounded wait) and a handshake
// slot. Refused there, it is closed at once — no CONNACK can be sent before TLS, and
// not doing the handshake is the point — and recorded (429001, no device
// id, the masked address; journalled in batches, refusalbatch.go). Plain TCP and WebSocket connections (the HTTPS
// server did their TLS) are judged the same way once their CONNECT is
// read, and refused with CONNACK "server unavailable" (MQTT 5: server
// busy for the hub-wide rate, quota exceeded for an address). After
// authentication a device's connects are counted (429005, CONNACK server
// unavailable / quota exceeded). D2C messages are held back on the
// device's reader (its TCP window fills; no goroutine) up to the message
// queue, and past it the session ends: 429001 (MQTT 5: DISCONNECT quota
// exceeded or server busy), or 403002 once the daily quota is used up.
// The message is not acknowledged; the device sends it again.

// sleep waits d unless the hub stops first; it reports whether it slept.
func (b *Broker) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.stopped:
		return false
	}
}

// hostOf is the IP of a "host:port" remote address.
func hostOf(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// throttleConnection applies the new-connection limits to a connection
// the TLS listener did not judge, waiting for its turn if the hub-wide
// rate says so; nil admits it. A WebSocket connection is priced as a TLS
// one (the HTTPS server did its handshake), a plain-TCP one at its own,
// lower price.
func (s *session) throttleConnection(beforeHandshake bool) *refusal {
	b := s.b
	kind := throttle.ConnectPlain
	if s.proto() == protoMQTTWS {
		kind = throttle.ConnectTLS
	}
	wait, scope := b.opts.Throttle.Connection(hostOf(s.remote), kind, time.Now())
	if scope != throttle.ScopeNone {
		return b.connectionRefusal(scope, beforeHandshake)
	}
	if wait > 0 && !b.sleep(wait) {
		return shutdownRefusal
	}
	return nil
}

var shutdownRefusal = &refusal{v3: packets.Err3ServerUnavailable, v5: packets.ErrServerUnavailable,
	reason: presence.ReasonServerShutdown, result: presence.ResultServerError, detail: "the hub is shutting down"}

// admitAccepted judges a connection the TLS listener just accepted,
// before any goroutine or session exists for it: its source address and
// the hub-wide rate. A refused one is recorded and closed here (the
// cheapest refusal there is: an accept and a close); an admitted one may
// have to wait for its turn, which its own goroutine does.
func (b *Broker) admitAccepted(c net.Conn) (wait time.Duration, ok bool) {
	remote := c.RemoteAddr().String()
	wait, scope := b.opts.Throttle.Connection(hostOf(remote), throttle.ConnectTLS, time.Now())
	if scope == throttle.ScopeNone {
		return wait, true
	}
	b.refusedBeforeHandshake(protoMQTT, remote, b.connectionRefusal(scope, true))
	_ = c.Close()
	return 0, false
}

// beforeHandshake waits the connection's turn under the hub-wide rate,
// then for a handshake slot; refused, it is recorded and closed. true: go
// on with the handshake, which holds the slot until HandshakeDone.
func (s *session) beforeHandshake(wait time.Duration) bool {
	b := s.b
	t := b.opts.Throttle
	if t == nil {
		return true
	}
	if wait > 0 && !b.sleep(wait) {
		return false // stopping
	}
	if t.Handshake(b.stopped) {
		return true
	}
	b.refusedBeforeHandshake(s.proto(), s.remote, b.connectionRefusal(throttle.ScopeHandshake, true))
	return false
}

// refusedBeforeHandshake records a refusal made before a TLS handshake
// (journalled in batches, refusalbatch.go); a stopping hub records none.
func (b *Broker) refusedBeforeHandshake(protocol, remote string, ref *refusal) {
	if b.table.stopping.Load() {
		return
	}
	b.collectRefusal(presence.ConnectionEvent{
		Protocol: protocol, MaskedIP: maskIP(remote),
		Reason: ref.reason, Result: ref.result, Detail: ref.detail,
	})
}

// throttleRefusals are the refusals of throttled connections, made once
// (a storm refuses thousands a second): for each scope, answered after
// the CONNECT, and recorded before a TLS handshake.
type throttleRefusals struct {
	after, before map[throttle.Scope]*refusal
	device        *refusal
}

func newThrottleRefusals(l throttle.Limits) *throttleRefusals {
	t := &throttleRefusals{after: map[throttle.Scope]*refusal{}, before: map[throttle.Scope]*refusal{}}
	t.after[throttle.ScopeHub] = &refusal{v3: packets.Err3ServerUnavailable, v5: packets.ErrServerBusy,
		reason: presence.ReasonThrottledHub, result: presence.ResultThrottled,
		detail: fmt.Sprintf("the hub takes %s a second (burst %d) and had no turn for this one within %s; retry with back-off", hubRates(l), l.ConnectBurst, l.ConnectQueue)}
	t.after[throttle.ScopeAddress] = &refusal{v3: packets.Err3ServerUnavailable, v5: packets.ErrQuotaExceeded,
		reason: presence.ReasonThrottledAddress, result: presence.ResultThrottled,
		detail: fmt.Sprintf("the source address opens more than %s new connections a second (burst %d); retry with back-off", rate(l.AddressRate), l.AddressBurst)}
	t.after[throttle.ScopeHandshake] = &refusal{v3: packets.Err3ServerUnavailable, v5: packets.ErrServerBusy,
		reason: presence.ReasonThrottledHandshake, result: presence.ResultThrottled,
		detail: fmt.Sprintf("%d TLS handshakes were in progress and none finished within %s; retry with back-off", l.Handshakes, l.HandshakeQueue)}
	for scope, ref := range t.after {
		before := *ref
		before.detail += " (refused before the TLS handshake: no CONNACK)"
		t.before[scope] = &before
	}
	t.device = &refusal{v3: packets.Err3ServerUnavailable, v5: packets.ErrQuotaExceeded,
		reason: presence.ReasonThrottledDevice, result: presence.ResultDeviceThrottled,
		detail: fmt.Sprintf("the device connects more than %s times a second (burst %d): is its SDK stuck in a reconnect loop? Retry with back-off", rate(l.DeviceRate), l.DeviceBurst)}
	return t
}

// connectionRefusal is the refusal of a new connection by scope, before
// the TLS handshake or after the CONNECT.
func (b *Broker) connectionRefusal(scope throttle.Scope, beforeHandshake bool) *refusal {
	if beforeHandshake {
		return b.throttled.before[scope]
	}
	return b.throttled.after[scope]
}

// deviceThrottled is the refusal of a device that connects too often.
func (b *Broker) deviceThrottled() *refusal { return b.throttled.device }

func rate(r float64) string { return fmt.Sprintf("%g", r) }

// hubRates says what the hub-wide connect rates admit.
func hubRates(l throttle.Limits) string {
	switch p := l.PlainConnectRate; {
	case l.ConnectRate == 0:
		return rate(p) + " plain-TCP connections"
	case p == 0:
		return rate(l.ConnectRate) + " new connections"
	case math.IsInf(p, 1):
		return rate(l.ConnectRate) + " TLS or WebSocket connections (plain TCP: no limit)"
	default:
		return fmt.Sprintf("%s TLS or WebSocket connections or %s plain-TCP ones", rate(l.ConnectRate), rate(p))
	}
}

// throttleMessage admits one D2C message of the session's device, holding
// the reader back for its turn. over: the session ends for c; dropped:
// the session was asked to end while it waited (the message is dropped
// unacknowledged and reading goes on, see acquireInflight).
func (s *session) throttleMessage() (c cause, over, dropped bool) {
	t := s.b.opts.Throttle
	wait, scope := t.Message(s.id.deviceID, time.Now())
	l := t.Limits()
	switch scope {
	case throttle.ScopeNone:
		return cause{}, false, wait > 0 && !s.holdBack(wait)
	case throttle.ScopeDevice:
		return cause{reason: presence.ReasonThrottledMessages, result: presence.ResultThrottled, v5: v5QuotaExceeded,
			detail: fmt.Sprintf("the device sends more than %s messages a second (burst %d) for longer than the hub holds them back (%s); the message was not acknowledged", rate(l.MessageRate), l.MessageBurst, l.MessageQueue)}, true, false
	case throttle.ScopeHub:
		return cause{reason: presence.ReasonThrottledHubMsgs, result: presence.ResultThrottled, v5: v5ServerBusy,
			detail: fmt.Sprintf("the hub takes %s messages a second (burst %d) from all devices and had no turn for this one within %s; the message was not acknowledged", rate(l.HubMessageRate), l.HubMessageBurst, l.MessageQueue)}, true, false
	}
	return cause{reason: presence.ReasonQuotaExceeded, result: presence.ResultQuotaExceeded, v5: v5QuotaExceeded,
		detail: fmt.Sprintf("the hub's daily quota of %d messages is used up; it resets at 00:00 UTC", l.DailyQuota)}, true, false
}

// holdBack waits d on the reader before a message goes on; false if the
// session is asked to end meanwhile.
func (s *session) holdBack(d time.Duration) bool {
	free := s.d2c.waitChan()
	if s.requested() != nil { // asked before free was made: no signal came
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-free:
			// A window signal is harmless to take: acquireInflight looks
			// at the count before it waits.
			if s.requested() != nil {
				return false
			}
		}
	}
}
