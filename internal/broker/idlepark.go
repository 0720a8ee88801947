package broker

import (
	"errors"
	"os"
	"time"
)

// An idle session holds no goroutine.
//
// A goroutine costs an idle hub its stack (2 KiB at least, and a reader
// that once went deep, decrypting a TLS record or handling a packet,
// keeps 4 or 8 KiB: the runtime shrinks a stack during GC only while less
// than a quarter of it is in use) and its g (~0.5 KiB, kept for reuse once
// it exits). So once everything the device sent is handled and all
// further input is still in the socket (nothing buffered in the session's
// reader, in crypto/tls or in its recordConn), an MQTT listener's session
// parks: its socket goes into the broker's idle poller (idlepoll_linux.go)
// and the goroutine that read it exits. Whoever first takes the parked
// session (parkState) runs it next:
//
//   - the poller, when the socket has input: a PINGREQ it answers itself,
//     on its own long-grown stack, and the session parks again (an idle
//     device only ever pings); any other packet, an error or a packet not
//     yet whole goes on on a new goroutine of the session's own;
//   - the keep-alive timer, when the device has been silent for 1.5 ×
//     keep-alive (plus an eighth, as armKeepAlive allows): the session
//     ends as a keep-alive expiry;
//   - requestEnd (takeover, expiry, kick, shutdown), after waking the
//     socket: the session's reader drains what had arrived and ends.
//
// A session parks right after its CONNACK, and again whenever its reader
// is idle after a PINGREQ or has handled nothing since it started: a
// device that keeps sending packets keeps its goroutine (parking it after
// every packet would start a goroutine per packet), and an idle one loses
// it at its first ping.
//
// Where there is no poller (not Linux, or it could not be made) the old
// way remains: the reader waits for the socket on its own goroutine, a
// few hundred bytes deep, and after a PINGREQ over TLS goes on on a fresh
// goroutine so that the grown stack is freed (the "hop").

// Who runs a parked session (session.parkState).
const (
	parkRunning = iota // a goroutine of the session, or the one that took it
	parkParked         // nobody: the poller, the timer and requestEnd race to take it
)

// How an idle reader waits; a variable for BenchmarkIdlePing's comparison.
const (
	idlePoll = iota // park in the idle poller (else as idleHop)
	idleHop         // wait on the goroutine; after a TLS PINGREQ go on on a fresh one
	idleStay        // wait on the goroutine
)

var idleMode = idlePoll

// idleWait is called by the read loop before it reads the next packet. It
// reports true when the session went on without this goroutine (parked,
// or hopped to a new goroutine): this one must return without ending it.
func (s *session) idleWait() (gone bool) {
	if !s.parkable || !s.drained() {
		return false
	}
	if idleMode == idlePoll && (!s.deep || s.rd.last == pingreqHeader) && s.park() {
		return true
	}
	if s.deep {
		if s.rd.last != pingreqHeader || idleMode != idleHop {
			return false // a busy device: read on this goroutine
		}
		s.deep = false
		go s.run()
		return true
	}
	s.rd.releaseChunk() // next would, but only after the wait
	s.wake.waitReadable()
	// Decrypting what follows grows the stack; on plain TCP a PINGREQ and
	// its PINGRESP do not (BenchmarkIdleSession), so only a handled
	// packet (over) makes the reader deep there.
	s.deep = s.rec != nil
	return false
}

// drained reports that everything read from the socket is handled: the
// next input is still in the socket.
func (s *session) drained() bool {
	return s.rd.r == s.rd.w && (s.rec == nil || (s.rd.short && s.rec.quiet()))
}

const pingreqHeader = 0xC0

// park hands the idle session to the idle poller. It reports true when the
// session is parked: from then on the caller must not touch it.
func (s *session) park() bool {
	if s.wake.woken.Load() {
		return false // ending: the reader drains and ends
	}
	p := s.b.idlePoller()
	if p == nil {
		return false
	}
	if !s.inPoller {
		fd, ok := fdOf(s.wake)
		if !ok {
			return false
		}
		s.fd = fd
	}
	s.rd.releaseChunk()
	if s.deadlineAt != 0 || !s.inPoller {
		// The keep-alive is the timer's while parked. A deadline left on
		// the socket (the keep-alive's, or the connect timeout's at the
		// first park) would fire for nothing, and would fail the poller's
		// reads once past.
		_ = s.conn.SetReadDeadline(time.Time{})
		s.deadlineAt = 0
	}
	wait := s.idle + s.idle/8
	s.kaDue = time.Since(monoStart) + wait
	if s.kaTimer == nil {
		s.kaTimer = time.AfterFunc(wait, s.keepAliveLapsed)
	} else {
		s.kaTimer.Reset(wait)
	}
	s.deep = false // whoever runs the session next starts shallow
	if !p.add(s) {
		return false
	}
	// requestEnd wakes the socket before it tries to take a parked
	// session: if it tried before the add, take the session back here.
	if s.wake.woken.Load() && s.parkState.CompareAndSwap(parkParked, parkRunning) {
		return false
	}
	return true
}

// unpark runs a parked session's reader on a new goroutine, for
// requestEnd once the socket is woken.
func (s *session) unpark() {
	if s.parkState.CompareAndSwap(parkParked, parkRunning) {
		go s.run()
	}
}

// keepAliveLapsed is a parked session's keep-alive timer.
func (s *session) keepAliveLapsed() {
	if !s.parkState.CompareAndSwap(parkParked, parkRunning) {
		return // running: its read deadline keeps the keep-alive
	}
	if time.Since(monoStart) < s.kaDue {
		s.run() // parked again after the timer fired: not due yet
		return
	}
	s.finish(s.readEnd(os.ErrDeadlineExceeded))
}

// ready runs on the poller's goroutine, which took the parked session
// because its socket has input: it reads what is whole without waiting;
// a PINGREQ is answered here and the session parks again, anything else
// goes on on a goroutine of the session's own.
func (s *session) ready() {
	s.wake.nowait = true
	header, body, err := s.rd.next()
	s.wake.nowait = false
	switch {
	case err == nil && header == pingreqHeader && len(body) == 0:
		if !s.pongNowait() {
			// The device does not read what it is sent: its own goroutine
			// waits for room (up to the write timeout), not the poller
			// every parked session shares.
			go s.payOwedAndRun()
			return
		}
		if s.drained() && s.park() {
			return
		}
		go s.run()
	case err == nil:
		go s.runFrom(header, body)
	case errors.Is(err, errWouldBlock):
		go s.run() // not whole yet: the session's reader waits for the rest
	default:
		go s.finish(s.readEnd(err))
	}
}

// runFrom is run for a packet the poller read.
func (s *session) runFrom(header byte, body []byte) {
	if c := s.over(header, body); c != nil {
		s.finish(c)
		return
	}
	s.run()
}
