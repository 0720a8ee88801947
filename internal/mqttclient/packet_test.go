package mqttclient

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// decode parses raw with the broker's own codec.
func decode(t *testing.T, raw []byte) packets.Packet {
	t.Helper()
	r := bytes.NewReader(raw[1:])
	n, _, err := packets.DecodeLength(r)
	if err != nil {
		t.Fatal(err)
	}
	body := raw[len(raw)-r.Len():]
	if n != len(body) {
		t.Fatalf("remaining length %d, body %d bytes", n, len(body))
	}
	pk := packets.Packet{ProtocolVersion: 4}
	if err := pk.FixedHeader.Decode(raw[0]); err != nil {
		t.Fatal(err)
	}
	pk.FixedHeader.Remaining = n
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Subscribe:
		err = pk.SubscribeDecode(body)
	}
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

func TestConnectDecodesWithMochi(t *testing.T) {
	user := "localhost/bench-7/?api-version=2021-04-12"
	pass := "SharedAccessSignature sr=x&sig=y&se=1" + strings.Repeat("z", 200) // remaining length > 127
	for _, clean := range []bool{true, false} {
		pk := decode(t, ConnectPacket("bench-7", user, pass, 600, clean))
		c := pk.Connect
		if pk.ProtocolVersion != 4 || c.ClientIdentifier != "bench-7" || string(c.Username) != user ||
			string(c.Password) != pass || c.Keepalive != 600 || c.Clean != clean {
			t.Fatalf("decoded %+v, protocol %d", c, pk.ProtocolVersion)
		}
	}
}

func TestPublishAndSubscribeDecodeWithMochi(t *testing.T) {
	payload := bytes.Repeat([]byte("p"), 300)
	for _, qos := range []byte{0, 1} {
		pk := decode(t, AppendPublish(nil, "devices/d/messages/events/", qos, 7, payload))
		if pk.TopicName != "devices/d/messages/events/" || pk.FixedHeader.Qos != qos || !bytes.Equal(pk.Payload, payload) {
			t.Fatalf("qos %d: decoded topic %q qos %d payload %d bytes", qos, pk.TopicName, pk.FixedHeader.Qos, len(pk.Payload))
		}
		if qos == 1 && pk.PacketID != 7 {
			t.Fatalf("packet id %d", pk.PacketID)
		}
	}
	pk := decode(t, AppendSubscribe(nil, 9, "devices/d/messages/devicebound/#", 1))
	if pk.PacketID != 9 || len(pk.Filters) != 1 || pk.Filters[0].Filter != "devices/d/messages/devicebound/#" || pk.Filters[0].Qos != 1 {
		t.Fatalf("decoded %+v", pk)
	}
}

func TestReadConnack(t *testing.T) {
	if sp, err := ReadConnack(bytes.NewReader([]byte{0x20, 2, 1, 0})); err != nil || !sp {
		t.Fatalf("accepted CONNACK with session present: %v %v", sp, err)
	}
	_, err := ReadConnack(bytes.NewReader([]byte{0x20, 2, 0, 5}))
	var ce ConnackError
	if !errors.As(err, &ce) || ce != 5 {
		t.Fatalf("refused CONNACK: %v", err)
	}
	if _, err := ReadConnack(bytes.NewReader([]byte{0x30, 2, 0, 0})); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a PUBLISH passed as CONNACK: %v", err)
	}
}

func TestReadHeader(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 16383, 16384, 2097151, 268435455} {
		raw := appendLength([]byte{0x32}, n)
		h, err := ReadHeader(bytes.NewReader(raw))
		if err != nil || h.Type != TypePublish || h.Flags != 2 || h.Remaining != n {
			t.Fatalf("%d: %+v %v", n, h, err)
		}
	}
	if _, err := ReadHeader(bytes.NewReader([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 1})); !errors.Is(err, ErrMalformed) {
		t.Fatalf("5-byte length accepted: %v", err)
	}
}

func FuzzReadHeader(f *testing.F) {
	f.Add([]byte{0x20, 2, 0, 0})
	f.Add([]byte{0x30, 0x80, 0x01})
	f.Add([]byte{0xd0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ReadHeader(bytes.NewReader(b))
		if err != nil {
			return
		}
		// A header that decoded re-encodes to the same bytes, unless the
		// input used a non-minimal length encoding.
		re := appendLength([]byte{h.Type<<4 | h.Flags}, h.Remaining)
		if len(re) <= len(b) && !bytes.Equal(re, b[:len(re)]) && b[len(re)-1]&0x80 == 0 {
			t.Fatalf("% x decoded to %+v, re-encodes to % x", b, h, re)
		}
	})
}
