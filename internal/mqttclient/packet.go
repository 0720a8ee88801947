package mqttclient

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MQTT 3.1.1 control packet types (upper nibble of the first byte).
const (
	TypeConnect    = 1
	TypeConnack    = 2
	TypePublish    = 3
	TypePuback     = 4
	TypeSubscribe  = 8
	TypeSuback     = 9
	TypePingreq    = 12
	TypePingresp   = 13
	TypeDisconnect = 14
)

// Fixed two-byte packets.
var (
	pingreq    = []byte{TypePingreq << 4, 0}
	disconnect = []byte{TypeDisconnect << 4, 0}
)

// Connect is the content of a CONNECT packet as IoT Hub devices send it:
// username and password always present, no will.
type Connect struct {
	ClientID, Username, Password string
	KeepAlive                    uint16 // seconds
	Clean                        bool
}

// Append encodes c as an MQTT 3.1.1 CONNECT and appends it to b.
// [MQTT-3.1.2-*]: protocol name "MQTT", level 4; flags username 0x80,
// password 0x40, clean session 0x02.
func (c Connect) Append(b []byte) []byte {
	n := 2 + 4 + 1 + 1 + 2 + 2 + len(c.ClientID) + 2 + len(c.Username) + 2 + len(c.Password)
	b = append(b, TypeConnect<<4)
	b = appendLength(b, n)
	b = appendString(b, "MQTT")
	flags := byte(0x80 | 0x40)
	if c.Clean {
		flags |= 0x02
	}
	b = append(b, 4, flags)
	b = binary.BigEndian.AppendUint16(b, c.KeepAlive)
	b = appendString(b, c.ClientID)
	b = appendString(b, c.Username)
	return appendString(b, c.Password)
}

// ConnectPacket is Connect{…}.Append(nil).
func ConnectPacket(clientID, username, password string, keepAlive uint16, clean bool) []byte {
	return Connect{ClientID: clientID, Username: username, Password: password, KeepAlive: keepAlive, Clean: clean}.Append(nil)
}

// AppendPublish appends a PUBLISH of payload to topic. qos is 0 or 1; the
// packet id is written only for QoS 1.
func AppendPublish(b []byte, topic string, qos byte, packetID uint16, payload []byte) []byte {
	n := 2 + len(topic) + len(payload)
	if qos > 0 {
		n += 2
	}
	b = append(b, TypePublish<<4|qos<<1)
	b = appendLength(b, n)
	b = appendString(b, topic)
	if qos > 0 {
		b = binary.BigEndian.AppendUint16(b, packetID)
	}
	return append(b, payload...)
}

// AppendSubscribe appends a SUBSCRIBE of one filter.
func AppendSubscribe(b []byte, packetID uint16, filter string, qos byte) []byte {
	b = append(b, TypeSubscribe<<4|0x02) // [MQTT-3.8.1-1]: flags 0010
	b = appendLength(b, 2+2+len(filter)+1)
	b = binary.BigEndian.AppendUint16(b, packetID)
	b = appendString(b, filter)
	return append(b, qos)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// appendLength appends the remaining length as a variable byte integer.
func appendLength(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// ConnackError is a CONNACK with a non-zero return code (3.1.1: 1 protocol,
// 2 identifier rejected, 3 server unavailable, 4 bad username or password,
// 5 not authorized).
type ConnackError byte

func (e ConnackError) Error() string { return fmt.Sprintf("CONNACK return code %d", byte(e)) }

// ErrMalformed is returned for bytes that are not the packet expected.
var ErrMalformed = errors.New("mqttclient: malformed packet")

// ReadConnack reads a 4-byte 3.1.1 CONNACK. It returns the session-present
// flag, and a ConnackError if the return code is not 0.
func ReadConnack(r io.Reader) (sessionPresent bool, err error) {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return false, err
	}
	if b[0] != TypeConnack<<4 || b[1] != 2 {
		return false, fmt.Errorf("%w: want CONNACK, got % x", ErrMalformed, b)
	}
	if b[3] != 0 {
		return false, ConnackError(b[3])
	}
	return b[2]&1 == 1, nil
}

// Header is a decoded fixed header.
type Header struct {
	Type, Flags byte
	Remaining   int
}

// ReadHeader reads one fixed header, byte by byte from r (callers pass a
// buffered or record-oriented reader; the header is at most 5 bytes).
func ReadHeader(r io.Reader) (Header, error) {
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return Header{}, err
	}
	h := Header{Type: b[0] >> 4, Flags: b[0] & 0x0f}
	mult := 1
	for i := 0; ; i++ {
		if i == 4 {
			return Header{}, fmt.Errorf("%w: remaining length over 4 bytes", ErrMalformed)
		}
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Header{}, err
		}
		h.Remaining += int(b[0]&0x7f) * mult
		if b[0]&0x80 == 0 {
			return h, nil
		}
		mult *= 128
	}
}
