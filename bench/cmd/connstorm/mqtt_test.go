package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// The hand-written CONNECT must decode with the broker's own codec.
func TestConnectPacketDecodesWithMochi(t *testing.T) {
	user := "localhost/bench-7/?api-version=2021-04-12"
	pass := "SharedAccessSignature sr=x&sig=y&se=1" + strings.Repeat("z", 200) // remaining length > 127
	for _, clean := range []bool{true, false} {
		raw := connectPacket("bench-7", user, pass, 600, clean)
		r := bytes.NewReader(raw[1:])
		n, _, err := packets.DecodeLength(r)
		if err != nil {
			t.Fatal(err)
		}
		body := raw[len(raw)-r.Len():]
		if n != len(body) {
			t.Fatalf("remaining length %d, body %d bytes", n, len(body))
		}
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}}
		if err := pk.FixedHeader.Decode(raw[0]); err != nil {
			t.Fatal(err)
		}
		if err := pk.ConnectDecode(body); err != nil {
			t.Fatal(err)
		}
		c := pk.Connect
		if pk.ProtocolVersion != 4 || c.ClientIdentifier != "bench-7" || string(c.Username) != user ||
			string(c.Password) != pass || c.Keepalive != 600 || c.Clean != clean {
			t.Fatalf("decoded %+v, protocol %d", c, pk.ProtocolVersion)
		}
	}
}

func TestReadConnack(t *testing.T) {
	if err := readConnack(bytes.NewReader([]byte{0x20, 2, 0, 0})); err != nil {
		t.Fatalf("accepted CONNACK: %v", err)
	}
	err := readConnack(bytes.NewReader([]byte{0x20, 2, 0, 5}))
	var ce connackError
	if !errors.As(err, &ce) || ce != 5 || failureKind(&phaseError{"connack", err}) != "connack rc=5" {
		t.Fatalf("refused CONNACK: %v", err)
	}
	if err := readConnack(bytes.NewReader([]byte{0x30, 2, 0, 0})); err == nil {
		t.Fatal("a PUBLISH passed as CONNACK")
	}
	if got := failureKind(&phaseError{"tls", errors.New("x: EOF")}); got != "tls: EOF" {
		t.Fatalf("failureKind = %q", got)
	}
}
