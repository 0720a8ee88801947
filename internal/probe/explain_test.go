package probe

import (
	"bytes"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

func code(n int) *int { return &n }

// TestExplainRefusal: every CONNACK the probe can meet, with and without
// what the MQTT 5 follow-up and the clock added.
func TestExplainRefusal(t *testing.T) {
	now := time.Now()
	base := refusal{deviceID: "d1", now: now, tokenExpiry: now.Add(tokenTTL)}
	with := func(f func(*refusal)) refusal { r := base; f(&r); return r }
	cases := []struct {
		name  string
		f     refusal
		words string
	}{
		{"protocol", with(func(r *refusal) { r.rc = 1 }), "does not take MQTT 3.1.1"},
		{"client id", with(func(r *refusal) { r.rc = 2 }), "refused the client id"},
		{"unavailable", with(func(r *refusal) { r.rc = 3 }), "could not take the connection"},
		{"5, hub says no more", with(func(r *refusal) { r.rc = 5; r.v5 = &MQTT5Result{Error: "no MQTT 5 answer"} }), "wrong key, an expired token, an unknown or a disabled device alike"},
		{"5, clock fine", with(func(r *refusal) { r.rc = 5; r.clockKnown = true }), "rules out an expired token"},
		{"5, clock behind", with(func(r *refusal) { r.rc = 5; r.clockKnown = true; r.expiredAtHb = true }), "expired by the hub's clock"},
		{"0x86, clock fine", with(func(r *refusal) { r.rc = 5; r.clockKnown = true; r.v5 = &MQTT5Result{ReasonCode: code(0x86)} }), "not this device's"},
		{"0x86, clock unknown", with(func(r *refusal) { r.rc = 5; r.v5 = &MQTT5Result{ReasonCode: code(0x86)} }), "step 4 could not tell"},
		{"0x87 with reason", with(func(r *refusal) {
			r.rc = 5
			r.v5 = &MQTT5Result{ReasonCode: code(0x87), ReasonString: "device 'd1' is disabled"}
		}), "the hub says: device 'd1' is disabled"},
		{"0x87 module", with(func(r *refusal) { r.rc = 5; r.moduleID = "m1"; r.v5 = &MQTT5Result{ReasonCode: code(0x87)} }), `module "m1"`},
		{"fixed token expired", with(func(r *refusal) { r.rc = 5; r.fixedToken = true; r.tokenExpiry = now.Add(-time.Minute) }), "SharedAccessSignature expired"},
	}
	for _, c := range cases {
		s, h := c.f.explain()
		if !strings.Contains(s, c.words) || h == "" {
			t.Errorf("%s: %q (hint %q)", c.name, s, h)
		}
	}
}

func TestClassify(t *testing.T) {
	for err, want := range map[error]Outcome{
		nil:                  Connected,
		syscall.ECONNREFUSED: Refused,
		syscall.ECONNRESET:   Reset,
		syscall.EHOSTUNREACH: Unreachable,
		io.EOF:               Closed,
		io.ErrClosedPipe:     OtherError,
	} {
		if got := classify(err); got != want {
			t.Errorf("classify(%v) = %s, want %s", err, got, want)
		}
	}
}

func TestKeepAliveFor(t *testing.T) {
	// The hub waits 1.5 × keep-alive: that must outlast gap + the ping.
	for _, gap := range []time.Duration{time.Second, 5 * time.Minute, 28 * time.Minute} {
		ka := keepAliveFor(gap, 10*time.Second)
		if time.Duration(ka)*time.Second*3/2 <= gap+10*time.Second || ka > 65535 {
			t.Errorf("gap %s: keep-alive %d", gap, ka)
		}
	}
}

// TestDecodeConnack5 reads what a hub answers to the MQTT 5 CONNECT.
func TestDecodeConnack5(t *testing.T) {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ProtocolVersion: 5, ReasonCode: 0x87,
		Properties: packets.Properties{ReasonString: "device 'x' is disabled"}}
	var buf bytes.Buffer
	if err := pk.ConnackEncode(&buf); err != nil {
		t.Fatal(err)
	}
	typ, body, err := readPacket(&buf)
	if err != nil {
		t.Fatal(err)
	}
	c, reason, err := decodeConnack5(typ, body)
	if err != nil || c != 0x87 || reason != "device 'x' is disabled" {
		t.Fatalf("got %#x %q %v", c, reason, err)
	}
	// A hub without MQTT 5 answers with a 3.1.1 CONNACK (code 1).
	if c, _, err := decodeConnack5(2, []byte{0, 1}); err != nil || c != 1 {
		t.Fatalf("3.1.1-sized answer: %#x %v", c, err)
	}
	if _, _, err := decodeConnack5(3, []byte{0, 0}); err == nil {
		t.Fatal("a PUBLISH decoded as a CONNACK")
	}
}

// FuzzServerBytes feeds arbitrary bytes as a hub's answers: reading them
// never panics, and a packet that reads as a CONNACK either decodes or
// errs.
func FuzzServerBytes(f *testing.F) {
	f.Add([]byte{0x20, 2, 0, 0})
	f.Add([]byte{0x20, 3, 0, 0x87, 0})
	f.Add([]byte{0x20, 0x0a, 0, 0x87, 7, 0x1f, 0, 4, 'n', 'o', 'p', 'e'})
	f.Add([]byte{0x90, 3, 0, 1, 0x80})
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			typ, body, err := readPacket(r)
			if err != nil {
				return
			}
			if len(body) > maxServerPacket {
				t.Fatalf("read %d bytes", len(body))
			}
			_, _, _ = decodeConnack5(typ, body)
		}
	})
}
