package broker

import (
	"errors"
	"time"
)

// writeTimeout bounds one write to a device: a device that does not read
// what the hub sends (acks, C2D) for this long is disconnected.
const writeTimeout = 10 * time.Second

// errSessionClosed is returned for writes after the session ended.
var errSessionClosed = errors.New("session closed")

// write sends p whole, from any goroutine. The first failure ends the
// session (the device is gone or does not read) and fails every later
// write at once.
func (s *session) write(p []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.wfails != nil {
		return s.wfails
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := s.conn.Write(p); err != nil {
		s.wfails = err
		s.requestEnd(causeWriteFailed(err))
		return err
	}
	return nil
}

// writeFinal sends the hub's last packet (an MQTT 5 DISCONNECT) with a
// short deadline: the session ends whether or not it arrives.
func (s *session) writeFinal(p []byte) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.wfails == nil {
		_ = s.conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = s.conn.Write(p)
	}
}

// closeWrites makes every later write fail.
func (s *session) closeWrites() {
	s.wmu.Lock()
	if s.wfails == nil {
		s.wfails = errSessionClosed
	}
	s.wmu.Unlock()
}

// Small packets, encoded by hand: they are the hot path (PUBACK) or too
// simple to need the codec.

func disconnectPacket(reason byte) []byte { return []byte{0xE0, 2, reason, 0} }

var pingresp = []byte{0xD0, 0}

// appendPuback appends a PUBACK for id (success needs no reason code, in
// MQTT 5 too).
func appendPuback(b []byte, id uint16) []byte {
	return append(b, 0x40, 2, byte(id>>8), byte(id))
}

// suback encodes a SUBACK with one return code per filter.
func suback(version byte, id uint16, codes []byte) []byte {
	n := 2 + len(codes)
	if version == 5 {
		n++ // property length 0
	}
	b := append(appendLength([]byte{0x90}, n), byte(id>>8), byte(id))
	if version == 5 {
		b = append(b, 0)
	}
	return append(b, codes...)
}

// unsuback encodes an UNSUBACK (MQTT 5: one reason code per filter).
func unsuback(version byte, id uint16, codes []byte) []byte {
	if version != 5 {
		return []byte{0xB0, 2, byte(id >> 8), byte(id)}
	}
	b := append(appendLength([]byte{0xB0}, 3+len(codes)), byte(id>>8), byte(id), 0)
	return append(b, codes...)
}

// appendLength appends n as an MQTT variable byte integer.
func appendLength(b []byte, n int) []byte {
	for {
		d := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}
