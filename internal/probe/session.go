package probe

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/mqttclient"
)

// maxServerPacket bounds what the probe reads from a hub: C2D messages
// are at most 256 KiB.
const maxServerPacket = 1 << 20

// session is one MQTT 3.1.1 connection of the probe. Everything is
// synchronous: a request, then the packets up to its answer. PUBLISHes
// from the hub (C2D for the device) are counted and never acknowledged,
// so the hub keeps them for the device.
type session struct {
	nc      net.Conn
	br      *bufio.Reader
	timeout time.Duration
	pid     uint16
	c2d     int
}

func newSession(nc net.Conn, timeout time.Duration) *session {
	return &session{nc: nc, br: bufio.NewReaderSize(nc, 512), timeout: timeout}
}

func (s *session) write(b []byte) error {
	_ = s.nc.SetWriteDeadline(time.Now().Add(s.timeout))
	_, err := s.nc.Write(b)
	return err
}

// connect sends CONNECT and reads the CONNACK; a refusal is a
// mqttclient.ConnackError.
func (s *session) connect(c mqttclient.Connect) (sessionPresent bool, err error) {
	if err := s.write(c.Append(nil)); err != nil {
		return false, err
	}
	_ = s.nc.SetReadDeadline(time.Now().Add(s.timeout))
	return mqttclient.ReadConnack(s.br)
}

func (s *session) nextID() uint16 {
	s.pid++
	if s.pid == 0 { // [MQTT-2.3.1-1]
		s.pid = 1
	}
	return s.pid
}

// subscribe sends one filter and returns the SUBACK's return code (0x80:
// refused).
func (s *session) subscribe(filter string, qos byte) (byte, error) {
	id := s.nextID()
	if err := s.write(mqttclient.AppendSubscribe(nil, id, filter, qos)); err != nil {
		return 0, err
	}
	body, err := s.await(mqttclient.TypeSuback, id, time.Now().Add(s.timeout))
	if err != nil {
		return 0, err
	}
	if len(body) < 3 {
		return 0, fmt.Errorf("%w: SUBACK without a return code", mqttclient.ErrMalformed)
	}
	return body[2], nil
}

// publish sends payload at QoS 1 and waits for the PUBACK.
func (s *session) publish(topic string, payload []byte) error {
	id := s.nextID()
	if err := s.write(mqttclient.AppendPublish(nil, topic, 1, id, payload)); err != nil {
		return err
	}
	_, err := s.await(mqttclient.TypePuback, id, time.Now().Add(s.timeout))
	return err
}

// ping sends PINGREQ and waits until deadline for the PINGRESP.
func (s *session) ping(deadline time.Time) error {
	if err := s.write([]byte{mqttclient.TypePingreq << 4, 0}); err != nil {
		return err
	}
	_, err := s.await(mqttclient.TypePingresp, 0, deadline)
	return err
}

// await reads packets until one of type want (with packet id id, when
// id is not 0) arrives, and returns its body.
func (s *session) await(want byte, id uint16, deadline time.Time) ([]byte, error) {
	_ = s.nc.SetReadDeadline(deadline)
	for {
		typ, body, err := readPacket(s.br)
		if err != nil {
			return nil, err
		}
		if typ == mqttclient.TypePublish {
			s.c2d++
			continue
		}
		if typ != want {
			continue
		}
		if id != 0 && (len(body) < 2 || binary.BigEndian.Uint16(body) != id) {
			continue
		}
		return body, nil
	}
}

// readPacket reads one packet: its type and its body.
func readPacket(r io.Reader) (byte, []byte, error) {
	h, err := mqttclient.ReadHeader(r)
	if err != nil {
		return 0, nil, err
	}
	if h.Remaining > maxServerPacket {
		return 0, nil, fmt.Errorf("%w: the hub sent a %d-byte packet", mqttclient.ErrMalformed, h.Remaining)
	}
	body := make([]byte, h.Remaining)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return h.Type, body, nil
}

// disconnect sends DISCONNECT, half-closes where it can, waits (briefly)
// for the hub to close, then closes: closing at once could reset the flow
// before the hub read the DISCONNECT, and the hub would record a drop.
func (s *session) disconnect() error {
	err := s.write([]byte{mqttclient.TypeDisconnect << 4, 0})
	if cw, ok := s.nc.(interface{ CloseWrite() error }); ok && err == nil {
		_ = cw.CloseWrite()
	}
	if err == nil {
		_ = s.nc.SetReadDeadline(time.Now().Add(min(s.timeout, 2*time.Second)))
		for {
			if _, _, rerr := readPacket(s.br); rerr != nil {
				break
			}
		}
	}
	s.nc.Close()
	return err
}

// connect5 asks again with MQTT 5, whose CONNACK reason codes tell a bad
// token (0x86) from a device the hub will not let in (0x87), and may carry
// a reason string. The session expiry keeps a resumed session persistent,
// as the 3.1.1 clean-session-0 CONNECT would.
func connect5(nc net.Conn, c mqttclient.Connect, timeout time.Duration) (code byte, reason string, err error) {
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 5,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), Clean: c.Clean, Keepalive: c.KeepAlive,
			ClientIdentifier: c.ClientID,
			UsernameFlag:     true, Username: []byte(c.Username),
			PasswordFlag: true, Password: []byte(c.Password),
		},
		Properties: packets.Properties{SessionExpiryInterval: 7 * 24 * 3600, SessionExpiryIntervalFlag: true},
	}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		return 0, "", err
	}
	_ = nc.SetDeadline(time.Now().Add(timeout))
	if _, err := nc.Write(buf.Bytes()); err != nil {
		return 0, "", err
	}
	typ, body, err := readPacket(bufio.NewReader(nc))
	if err != nil {
		return 0, "", err
	}
	return decodeConnack5(typ, body)
}

// decodeConnack5 decodes an MQTT 5 CONNACK (a 3.1.1-sized one, from a hub
// that does not speak 5, gives its return code).
func decodeConnack5(typ byte, body []byte) (byte, string, error) {
	if typ != mqttclient.TypeConnack {
		return 0, "", fmt.Errorf("%w: want CONNACK, got packet type %d", mqttclient.ErrMalformed, typ)
	}
	if len(body) == 2 {
		return body[1], "", nil
	}
	pk := packets.Packet{ProtocolVersion: 5, FixedHeader: packets.FixedHeader{Type: packets.Connack, Remaining: len(body)}}
	if err := pk.ConnackDecode(body); err != nil {
		return 0, "", errors.Join(mqttclient.ErrMalformed, err)
	}
	return pk.ReasonCode, pk.Properties.ReasonString, nil
}
