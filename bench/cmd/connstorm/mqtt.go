package main

import (
	"encoding/binary"
	"fmt"
	"io"
)

// connectPacket encodes an MQTT 3.1.1 CONNECT with a client id, username and
// password. [MQTT-3.1.2-*]: protocol name "MQTT", level 4; flags: username
// 0x80, password 0x40, clean session 0x02.
func connectPacket(clientID, username, password string, keepAlive uint16, clean bool) []byte {
	var body []byte
	body = appendString(body, "MQTT")
	flags := byte(0x80 | 0x40)
	if clean {
		flags |= 0x02
	}
	body = append(body, 4, flags)
	body = binary.BigEndian.AppendUint16(body, keepAlive)
	body = appendString(body, clientID)
	body = appendString(body, username)
	body = appendString(body, password)

	pk := []byte{0x10}
	for n := len(body); ; { // remaining length, variable byte integer
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		pk = append(pk, b)
		if n == 0 {
			break
		}
	}
	return append(pk, body...)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// connackError is a CONNACK with a non-zero return code.
type connackError byte

func (e connackError) Error() string { return fmt.Sprintf("CONNACK return code %d", byte(e)) }

// readConnack reads the 4-byte 3.1.1 CONNACK and returns a connackError if
// its return code is not 0.
func readConnack(r io.Reader) error {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	if b[0] != 0x20 || b[1] != 0x02 {
		return fmt.Errorf("not a CONNACK: % x", b)
	}
	if b[3] != 0 {
		return connackError(b[3])
	}
	return nil
}
