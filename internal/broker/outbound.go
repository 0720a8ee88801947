package broker

import (
	"bytes"
	"errors"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// writeTimeout bounds one write to a device: a device that does not read
// what the hub sends (acks, C2D) for this long is disconnected. A variable
// for tests only.
var writeTimeout = 10 * time.Second

// errSessionClosed is returned for writes after the session ended.
var errSessionClosed = errors.New("session closed")

// write sends p whole, from any goroutine. The first failure ends the
// session (the device is gone or does not read) and fails every later
// write at once.
func (s *session) write(p []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writeLocked(p, writeTimeout)
}

// writeLocked writes p under wmu, waiting for the device at most wait.
func (s *session) writeLocked(p []byte, wait time.Duration) error {
	if s.wfails != nil {
		return s.wfails
	}
	s.setWriteWait(wait)
	if _, err := s.conn.Write(p); err != nil {
		s.wfails = err
		s.requestEnd(causeWriteFailed(err))
		return err
	}
	return nil
}

// pong answers a PINGREQ from the reader itself when nothing else is being
// written to the device: handing the PINGRESP to a writer costs an idle
// hub a scheduler wake-up of another thread per ping. The reader is in its
// shallow read loop here, not under a packet's handler, so sealing the TLS
// record fits its small stack. If a writer has the session's bytes (or
// the lock), the PINGRESP queues behind them.
func (s *session) pong() {
	o := &s.out
	o.mu.Lock()
	direct := !o.queued && s.wmu.TryLock()
	o.mu.Unlock()
	if !direct {
		s.send(pingresp)
		return
	}
	_ = s.writeLocked(pingresp, writeTimeout) // a failure ends the session
	s.wmu.Unlock()
}

// writeFinal sends the hub's last packet (an MQTT 5 DISCONNECT) with a
// short deadline: the session ends whether or not it arrives.
func (s *session) writeFinal(p []byte) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.wfails == nil {
		s.setWriteWait(time.Second)
		_, _ = s.conn.Write(p)
	}
}

// pongNowait is pong on the idle poller (session.ready), which every
// parked session shares and so must never wait for a device: the PINGRESP
// goes out with one non-blocking write, and what the socket does not take
// (a device that sends PINGREQs and reads nothing) stays owed to the
// device. It reports false when something is owed: the session's own
// goroutine must pay it (payOwedAndRun), waiting for room as any write
// does. One write, where asking the socket for room first (ppoll) and
// then writing took two system calls per ping.
func (s *session) pongNowait() bool {
	o := &s.out
	o.mu.Lock()
	direct := !o.queued && s.wmu.TryLock()
	o.mu.Unlock()
	if !direct {
		s.send(pingresp) // a writer has the session's bytes: behind them
		return true
	}
	s.wake.oweRest = true
	_ = s.writeLocked(pingresp, writeTimeout) // a failure ends the session
	s.wake.oweRest = false
	paid := len(s.wake.owed) == 0
	s.wmu.Unlock()
	return paid
}

// payOwedAndRun writes what pongNowait left owed (if no other write has since),
// then reads on.
func (s *session) payOwedAndRun() {
	s.wmu.Lock()
	if s.wfails == nil {
		if err := s.wake.payOwed(); err != nil {
			s.wfails = err
			s.requestEnd(causeWriteFailed(err))
		}
	}
	s.wmu.Unlock()
	s.run()
}

// setWriteWait bounds the next write: through the socket's wakeConn once
// the session is established (no timer unless the socket is full), else
// with a write deadline.
func (s *session) setWriteWait(wait time.Duration) {
	if s.wake != nil && s.wake.writeWait.Load() != 0 {
		s.wake.setWriteWait(wait)
		return
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(wait))
}

// closeWrites makes every later write fail.
func (s *session) closeWrites() {
	s.wmu.Lock()
	if s.wfails == nil {
		s.wfails = errSessionClosed
	}
	s.wmu.Unlock()
}

// The hot, fixed-size packets, encoded by hand; everything else goes
// through the codec (ack encodes a SUBACK or UNSUBACK).

func disconnectPacket(reason byte) []byte { return []byte{0xE0, 2, reason, 0} }

var pingresp = []byte{0xD0, 0}

// appendPuback appends a PUBACK for id (success needs no reason code, in
// MQTT 5 too).
func appendPuback(b []byte, id uint16) []byte {
	return append(b, 0x40, 2, byte(id>>8), byte(id))
}

// ack encodes a SUBACK or UNSUBACK (typ) with one reason code per filter
// (MQTT 3.1.1 UNSUBACKs carry none).
func (s *session) ack(typ byte, id uint16, codes []byte) []byte {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: typ}, ProtocolVersion: s.version, PacketID: id, ReasonCodes: codes}
	var buf bytes.Buffer
	if typ == packets.Suback {
		_ = pk.SubackEncode(&buf)
	} else {
		_ = pk.UnsubackEncode(&buf)
	}
	return buf.Bytes()
}
