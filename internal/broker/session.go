package broker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/telemetry"
	"github.com/tether-hub/tether/internal/wsconn"
)

// session is one device connection, from its first byte to its recorded
// end. Its whole life, top to bottom in this file:
//
//  1. connect, on a connector goroutine (connectors.go), free again once
//     the session is established: TLS handshake and CONNECT within
//     the connect timeout, then admission (protocol, authentication); a
//     refusal gets its CONNACK code and a record.
//  2. establish: claim the device in the session table; end the session it
//     replaces and wait until that end is recorded; record this connect and
//     wait until the journal stored it; CONNACK.
//  3. run, on the session's own goroutine, started only now so that its
//     stack stays small (the handshake and authentication grew the other
//     one): read packets and hand them off until the device disconnects,
//     the connection fails, the keep-alive lapses, or the hub ends it.
//  4. end: say why (MQTT 5 DISCONNECT), close, record the cause, leave the
//     table.
//
// No other goroutine belongs to a session. Writes (CONNACK, acks, C2D) come
// from whichever goroutine has something to say, through the write lock
// with a deadline; token expiry is the broker's one timer (expiry.go).
//
// What a session holds for its whole life is in this one allocation where
// it can be (the socket's wakeConn, the presence session): an idle hub's
// memory is mostly its sessions', and every separate small object is one
// more that the connect storm's garbage can leave alone on a page.
type session struct {
	b      *Broker
	conn   net.Conn  // MQTT is read from and written to this
	wake   *wakeConn // the socket underneath; nil if it cannot be woken
	remote string
	rd     reader

	// Set while connecting; read-only once the session is established.
	version      byte
	cleanStart   bool
	persistent   bool // subscriptions outlive the connection
	replacedLive bool // claim replaced a live session (set under the table shard lock)
	keepAlive    uint16
	receiveMax   uint16        // C2D messages the device takes in flight
	idle         time.Duration // 1.5 × keep-alive, capped as IoT Hub does
	id           identity
	will         *telemetry.Message
	ps           *presence.Session // &psv once established (nil before)
	psv          presence.Session

	// deadlineAt is when the read deadline was last moved (monotonic, since
	// monoStart; 0: never). Only the reader uses it.
	deadlineAt time.Duration

	wmu    sync.Mutex
	wfails error  // the first failed write: nothing more is written
	out    outbox // queued for the writers

	c2dMu        sync.Mutex // orders C2D sends
	lastPacketID uint16     // guarded by the table shard lock
	established  atomic.Bool

	endMu  sync.Mutex // guards endReq, ended, isEnded, and ps against readers on other goroutines
	endReq *cause     // why the hub asked the session to end
	// ended is closed once the end is recorded (isEnded); made only for
	// a waiter (endedChan): most sessions end without one.
	ended   chan struct{}
	isEnded bool
	// expiryAt is the session's place in the broker's token expiries
	// (1-based; 0: not there), guarded by their lock.
	expiryAt int32

	d2c d2cState

	wakeVal wakeConn // wake, for a connection accepted by an MQTT listener

	// The reader's idle parking (idlepark.go), for connections accepted
	// by an MQTT listener: rec is what crypto/tls reads under TLS (nil on
	// plain TCP); deep says the reader's goroutine may have grown its
	// stack. Only the reader uses them once the session is established.
	parkable bool
	deep     bool
	rec      *recordConn

	// Parking in the broker's idle poller (idlepark.go): who runs the
	// session (parkState), its place in the poller (parkID, fd, inPoller:
	// set by whoever runs it, under the poller's lock), and its keep-alive
	// while parked (kaTimer, due at kaDue since monoStart).
	parkState atomic.Int32
	inPoller  bool
	fd        int32
	parkID    uint64
	kaTimer   *time.Timer
	kaDue     time.Duration
}

// proto is the session's transport as IoT Hub logs it (MQTT, MQTT-WS);
// presence's copy is set from the start.
func (s *session) proto() string { return s.psv.Protocol }

func (b *Broker) newSession(c net.Conn, wake *wakeConn, protocol, remote string) *session {
	s := &session{b: b, conn: c, wake: wake, remote: remote, receiveMax: c2dInflight}
	s.psv.Protocol = protocol
	s.rd.init(c, maxConnectPacket)
	return s
}

// newTCPSession is newSession for a connection an MQTT listener accepted:
// its wakeConn is part of the session.
func (b *Broker) newTCPSession(c *net.TCPConn, remote string) *session {
	s := &session{b: b, remote: remote, receiveMax: c2dInflight}
	s.psv.Protocol = protoMQTT
	s.wakeVal.TCPConn = c
	s.wake = &s.wakeVal
	s.conn = s.wake
	s.parkable = true
	s.rd.init(s.conn, maxConnectPacket)
	return s
}

// closeRaw closes the accepted connection (under TLS or WebSocket
// framing) from any goroutine: the connect phase replaces conn, never
// wake, and conn only when there is a wake.
func (s *session) closeRaw() error {
	if s.wake != nil {
		return s.wake.Close()
	}
	return s.conn.Close()
}

// endedChan returns a channel closed once the session's end is recorded.
func (s *session) endedChan() <-chan struct{} {
	s.endMu.Lock()
	defer s.endMu.Unlock()
	if s.ended == nil {
		s.ended = make(chan struct{})
		if s.isEnded {
			close(s.ended)
		}
	}
	return s.ended
}

// markEnded says the session's end is recorded (or that there is none to
// record).
func (s *session) markEnded() {
	s.endMu.Lock()
	s.isEnded = true
	if s.ended != nil {
		close(s.ended)
	}
	s.endMu.Unlock()
}

func (s *session) deviceID() string { return s.id.deviceID }

// serve runs a new connection: its connect phase here, then its reader on
// a goroutine of its own. tlsConf is set for the TLS listener (the
// handshake is part of the connect phase; wait is the connection's turn
// under the hub-wide rate, throttle.go); chain is the client certificate
// chain of a WebSocket's TLS connection, which the HTTPS server has
// already handshaken.
func (s *session) serve(tlsConf *tls.Config, chain []*x509.Certificate, wait time.Duration) {
	b := s.b
	if !b.track(s) {
		_ = s.conn.Close()
		return
	}
	ok := s.connect(tlsConf, chain, wait)
	b.untrack(s)
	if !ok {
		_ = s.conn.Close()
		s.rd.close()
		if s.rec != nil {
			s.rec.release()
		}
		if s.ps == nil { // never connected: nothing for end to record
			s.markEnded()
		}
		b.wg.Done()
		return
	}
	if s.parkable && idleMode == idlePoll && s.drained() && s.park() {
		return // no goroutine until the device sends something
	}
	go s.run()
}

// connect reads and admits the CONNECT and establishes the session. It
// returns false when the connection is over (refused or failed; already
// recorded).
func (s *session) connect(tlsConf *tls.Config, chain []*x509.Certificate, wait time.Duration) bool {
	b := s.b
	if tlsConf != nil && !s.beforeHandshake(wait) {
		return false
	}
	_ = s.conn.SetDeadline(time.Now().Add(b.opts.ConnectTimeout))
	if tlsConf != nil {
		src := s.conn
		if s.parkable {
			s.rec = &recordConn{Conn: s.conn}
			src = s.rec
		}
		tc := tls.Server(src, tlsConf)
		err := tc.Handshake()
		b.opts.Throttle.HandshakeDone()
		if err != nil {
			if !errors.Is(err, io.EOF) || isTimeout(err) { // a bare port probe is not news
				b.preConnectFailure(s, fmt.Errorf("TLS handshake: %w", err))
			}
			return false
		}
		s.conn = tc
		s.rd.src = tc
		chain = tc.ConnectionState().PeerCertificates
	} else {
		// Read the CONNECT (a few hundred bytes) with one read(2), not
		// 16 bytes and then the rest: a pooled chunk from the start, given
		// back once the CONNECT is handled (reader.next) or the connection
		// ends (serve). Over TLS crypto/tls buffers the record already.
		s.rd.grow(chunkSizes[0])
	}
	// The first byte must start a CONNECT: anything else (HTTP, TLS to
	// the plain port, a PUBLISH) is refused before its length is believed.
	header, err := s.rd.peek()
	if err == nil && header != packets.Connect<<4 {
		err = fmt.Errorf("the first byte 0x%02x does not start a CONNECT (it would be %s)", header, packetName(header))
	}
	var body []byte
	if err == nil {
		header, body, err = s.rd.next()
	}
	if err != nil {
		if s.rd.got || isTimeout(err) {
			b.preConnectFailure(s, err)
		}
		return false
	}
	var pk packets.Packet
	if err := pk.FixedHeader.Decode(header); err != nil {
		b.preConnectFailure(s, fmt.Errorf("CONNECT: %w", err))
		return false
	}
	if err := pk.ConnectDecode(body); err != nil {
		b.preConnectFailure(s, fmt.Errorf("malformed CONNECT: %w", err))
		return false
	}
	if tlsConf == nil && b.opts.Throttle != nil {
		// No handshake was saved by refusing earlier: answer with a CONNACK.
		if ref := s.throttleConnection(false); ref != nil {
			s.refuse(&pk, ref)
			return false
		}
	}
	if ref := s.admit(&pk, chain); ref != nil {
		s.refuse(&pk, ref)
		return false
	}
	return s.establish()
}

// maxConnectPacket bounds a CONNECT: a SAS CONNECT is a few hundred bytes
// and a will IoT Hub takes is a small message. Until a session is
// established, nobody unauthenticated gets more.
const maxConnectPacket = 16 << 10

// recordWait bounds how long a CONNACK waits for the journal to store the
// device's connected event. Past it the CONNACK goes anyway: when the hub
// is that overloaded, refusing would make every device retry and add load
// (seen with tether sim), so durability of those few connects is given up
// instead, counted and logged.
var recordWait = 5 * time.Second // a variable for tests

// awaitStored waits, at most recordWait, for the journal to store the
// event whose Recorded callback feeds stored. nil after the wait means
// the event is still on its way: the hub answers anyway rather than hold
// every connect of an overloaded journal (logged at the 1st, 2nd, 4th,
// 8th… such answer: one line each would add to the overload).
func (b *Broker) awaitStored(stored <-chan error, deviceID string) error {
	t := recordTimers.Get().(*time.Timer)
	t.Reset(recordWait)
	defer func() {
		t.Stop() // since Go 1.23 no stale tick is left in C after Stop
		recordTimers.Put(t)
	}()
	select {
	case err := <-stored:
		return err
	case <-t.C:
		if n := b.slowRecords.Add(1); n&(n-1) == 0 {
			b.log.Warn("journal slow: answering connects before their events are stored", "device", deviceID, "waited", recordWait, "total", n)
		}
		return nil
	}
}

// recordTimers are awaitStored's timers, kept stopped between connects:
// a timer and its channel made for every connect were ~400 B of the
// connect storm's garbage each.
var recordTimers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// establish makes s the device's live session. Every connect that passed
// authentication is recorded as connected, then ended in order: a session
// replaced while it was still connecting is taken over right after.
func (s *session) establish() bool {
	b := s.b
	masked, sessionID := s.packStrings()
	prev, ok := b.table.claim(s)
	b.untrack(s) // from here Stop finds it in the table
	if !ok {
		s.refuse(nil, &refusal{v3: packets.Err3ServerUnavailable, v5: packets.ErrServerUnavailable,
			reason: presence.ReasonServerShutdown, result: presence.ResultServerError, detail: "the hub is shutting down"})
		return false
	}
	if prev != nil {
		prev.requestEnd(causeTakeover)
		if !s.awaitEnd(prev) {
			return false
		}
	}
	// The device may have been disabled or deleted between authentication
	// and the claim; Kick found no session of it then, so look again.
	if cred, found := b.opts.Devices(s.id.deviceID); !found || !cred.Enabled {
		b.table.release(s, b.opts.Now())
		s.refuse(nil, b.deviceRefusal(s.id.deviceID, cred.Enabled, found))
		return false
	}
	present := b.table.attach(s, b.opts.Now())
	recorded := make(chan error, 1)
	ps := &s.psv
	*ps = presence.Session{
		ID: sessionID, DeviceID: s.id.deviceID, ModuleID: s.id.moduleID,
		Protocol: s.proto(), ProtocolVersion: s.version, MaskedIP: masked,
		SDKVersion: s.id.sdkVersion, AuthType: s.id.authType, TokenExpiry: s.id.tokenExpiry,
		ConnectedAt: b.opts.Now(), CleanSession: s.cleanStart, KeepAliveSeconds: s.keepAlive,
		Recorded: func(err error) { recorded <- err },
	}
	if h := b.opts.Claims; h != nil {
		if err := h.Claim(ps); err != nil {
			b.table.release(s, b.opts.Now())
			s.refuse(nil, &refusal{v3: packets.Err3ServerUnavailable, v5: packets.ErrServerUnavailable,
				reason: presence.ReasonServerError, result: presence.ResultServerError, detail: err.Error()})
			return false
		}
	}
	s.endMu.Lock() // EndSession (another node's takeover) reads ps from its own goroutine
	s.ps = ps
	s.endMu.Unlock()
	b.opts.Presence.Connect(s.ps)
	s.ps.Recorded = nil // presence has taken it; do not keep the channel for the session's life
	if err := b.awaitStored(recorded, s.id.deviceID); err != nil {
		b.log.Error("closing a connection whose connected event the journal did not store", "device", s.id.deviceID, "err", err)
		s.end(causeNotStored)
		return false
	}
	if s.wake != nil {
		// From here on a write waits only when the device does not read
		// (wakeConn.Write): the connect phase's deadline goes.
		_ = s.conn.SetWriteDeadline(time.Time{})
		s.wake.setWriteWait(writeTimeout)
	}
	if err := s.write(s.connack(present, packets.CodeSuccess)); err != nil {
		s.end(causeWriteFailed(err))
		return false
	}
	s.established.Store(true)
	s.rd.max = int32(b.maxPacket())
	// IoT Hub cannot re-authenticate an MQTT connection: when the token
	// expires, the hub closes it (logged 401003 then 404104). A session
	// authenticated by certificate has no token.
	if !s.id.tokenExpiry.IsZero() {
		b.expiries.add(s)
	}
	s.pushC2D() // a persistent session's queue
	b.wakeMethodCallers(s.id.deviceID)
	return true
}

// packStrings gives the strings a session keeps for its life (device id,
// SDK version, remote address, masked address, presence session id) one
// allocation, made after authentication's garbage. Cut from the CONNECT's
// username and formatted separately, each would be a small object of its
// own that outlives the connect phase's garbage around it and keeps a
// mostly empty span of the heap in use. The session table and presence
// key their maps with the device id from here. The masked address and the
// session id are formatted straight into that one string.
func (s *session) packStrings() (masked, sessionID string) {
	var buf [192]byte // on the stack: the string below is the one allocation
	b := append(buf[:0], s.id.deviceID...)
	b = append(b, s.id.moduleID...)
	b = append(b, s.id.sdkVersion...)
	b = append(b, s.remote...)
	m0 := len(b)
	b = appendMaskedIP(b, s.remote)
	m1 := len(b)
	b = presence.AppendSessionID(b)
	all := string(b)
	cut := func(n int) string {
		part := all[:n]
		all = all[n:]
		return part
	}
	s.id.deviceID = cut(len(s.id.deviceID))
	s.id.moduleID = cut(len(s.id.moduleID))
	s.id.sdkVersion = cut(len(s.id.sdkVersion))
	s.remote = cut(len(s.remote))
	masked = cut(m1 - m0)
	return masked, all
}

// takeoverWait bounds how long a new connection waits for the session it
// replaces to end. That session's reader is woken and drains only what had
// arrived, so this only runs out when the hub is stuck (a journal that
// stores nothing, so its end cannot be recorded).
const takeoverWait = 30 * time.Second

// awaitEnd waits until prev's end is recorded. If it is not within
// takeoverWait, prev stays the device's live session and s is refused
// (server unavailable), so two sessions are never live at once.
func (s *session) awaitEnd(prev *session) bool {
	t := time.NewTimer(takeoverWait)
	defer t.Stop()
	select {
	case <-prev.endedChan():
		return true
	case <-t.C:
	}
	s.b.table.restore(s, prev)
	s.refuse(nil, &refusal{v3: packets.Err3ServerUnavailable, v5: packets.ErrServerUnavailable,
		reason: presence.ReasonServerError, result: presence.ResultTimeout,
		detail: fmt.Sprintf("the device's previous connection did not end within %s", takeoverWait)})
	return false
}

// run is the session's reader: it handles packets in order until the
// session ends, then records the end.
//
// An idle reader spends its life parked in Read, and a goroutine stack
// that once grew is not shrunk back while the frames above the park take
// more than a few hundred bytes. So everything between the goroutine's
// start and the park is kept small: run and readLoop hold only pointers,
// handling and ending are calls out (over, readEnd, finish), and a plain
// TCP reader that reads and pings stays within the runtime's 2 KiB
// starting stack (BenchmarkIdleSession: stack-B/conn).
func (s *session) run() {
	if c := s.readLoop(); c != nil {
		s.finish(c)
	}
}

// finish ends the session for c once its reader is done.
//
//go:noinline
func (s *session) finish(c *cause) {
	s.end(*c)
	s.rd.close()
	if s.rec != nil {
		s.rec.release()
	}
	if s.kaTimer != nil {
		s.kaTimer.Stop()
	}
	if s.parkID != 0 {
		s.b.idlePoller().forget(s)
	}
	s.b.wg.Done()
}

// It returns nil when the reader went on on another goroutine (idleWait).
func (s *session) readLoop() *cause {
	for {
		s.armKeepAlive()
		if s.idleWait() {
			return nil
		}
		header, body, err := s.rd.next()
		if err != nil {
			return s.readEnd(err)
		}
		if header == packets.Pingreq<<4 && len(body) == 0 {
			s.pong() // here, not in handle: see pong
			continue
		}
		if c := s.over(header, body); c != nil {
			return c
		}
	}
}

// over handles a packet for the read loop: nil, or why the packet ended
// the session. handle's frame (a decoded packet) stays out of the loop's.
//
//go:noinline
func (s *session) over(header byte, body []byte) *cause {
	s.deep = true // handle's frames grow the stack (idlepark.go)
	if c, over := s.handle(header, body); over {
		return &c
	}
	return nil
}

// readEnd is readFailure for the read loop.
//
//go:noinline
func (s *session) readEnd(err error) *cause {
	c := s.readFailure(err)
	return &c
}

// readFailure is the cause of a read that failed: what the hub asked for
// when it woke the reader (takeover, expiry, kick, shutdown), unless the
// device had closed the connection first; else what the error says.
func (s *session) readFailure(err error) cause {
	if req := s.requested(); req != nil && !isClosedError(err) {
		return *req
	}
	switch {
	case errors.Is(err, wsconn.ErrTextFrame):
		return causeProtocol(v5ProtocolError, "%v", err)
	case errors.Is(err, errTooLarge):
		return causeProtocol(v5PacketTooLarge, "%v", err)
	case errors.Is(err, errMalformedLength):
		return causeProtocol(v5MalformedPacket, "%v", err)
	}
	return causeOfReadError(err)
}

// armKeepAlive moves the read deadline, at most every eighth of the idle
// span (a deadline change costs a timer update). The deadline is an eighth
// past the span, so a device silent for exactly 1.5 × keep-alive after its
// last packet is never cut early, only up to an eighth late.
func (s *session) armKeepAlive() {
	now := time.Now()
	since := now.Sub(monoStart) + 1 // never 0
	if s.deadlineAt != 0 && since-s.deadlineAt < s.idle/8 {
		return
	}
	s.deadlineAt = since
	deadline := now.Add(s.idle + s.idle/8)
	if s.wake != nil { // it keeps a woken deadline in the past itself
		_ = s.conn.SetReadDeadline(deadline)
		return
	}
	s.endMu.Lock()
	if s.endReq == nil {
		_ = s.conn.SetReadDeadline(deadline)
	} else {
		_ = s.conn.SetReadDeadline(aLongTimeAgo)
	}
	s.endMu.Unlock()
}

// monoStart is the origin of sessions' monotonic times.
var monoStart = time.Now()

// requestEnd asks the session to end for c: the reader is woken, finishes
// what the device had already sent, and ends with c unless that input
// ended the session first (a client DISCONNECT, a closed socket). Only the
// first request counts; it reports whether this was it.
func (s *session) requestEnd(c cause) bool {
	s.endMu.Lock()
	if s.endReq != nil {
		s.endMu.Unlock()
		return false
	}
	s.endReq = &c
	s.d2c.signal() // a reader waiting for the journal window
	if s.wake == nil {
		_ = s.conn.SetReadDeadline(aLongTimeAgo)
	}
	s.endMu.Unlock()
	if s.wake != nil {
		s.wake.wake()
		s.unpark()
	}
	return true
}

func (s *session) requested() *cause {
	s.endMu.Lock()
	defer s.endMu.Unlock()
	return s.endReq
}

// end records how the session ended and lets the next one in. It runs
// once, on the reader (or on the connect goroutine when the session ended
// before its reader started).
func (s *session) end(c cause) {
	b := s.b
	if c.reason == presence.ReasonNetwork && b.table.stopping.Load() {
		c = causeShutdown // Stop closed it before it reached the table
	}
	if !s.id.tokenExpiry.IsZero() {
		b.expiries.remove(s)
	}
	if c.v5 != 0 && s.version == 5 && s.established.Load() {
		s.writeFinal(disconnectPacket(c.v5))
	}
	s.closeWrites()
	_ = s.conn.Close()
	if h := b.opts.Claims; h == nil || h.Ending(s.ps) {
		b.opts.Presence.Disconnect(s.ps, c.reason, c.result, c.detail)
	}
	if s.will != nil && (c.reason == presence.ReasonNetwork || c.reason == presence.ReasonKeepAlive || c.reason == presence.ReasonProtocolError) {
		s.will.EnqueuedTime = b.opts.Now().UTC()
		b.opts.Telemetry(*s.will, nil)
	}
	b.table.release(s, b.opts.Now())
	s.markEnded()
}

// maxIdle is IoT Hub's cap on the keep-alive timeout (1767 s).
const maxIdle = 1767 * time.Second

// idleLimit is how long a session may stay silent: 1.5 × its keep-alive,
// capped at IoT Hub's 1767 s (also for keep-alive 0).
func idleLimit(keepAlive uint16) time.Duration {
	if keepAlive == 0 {
		return maxIdle
	}
	return min(time.Duration(keepAlive)*1500*time.Millisecond, maxIdle)
}
