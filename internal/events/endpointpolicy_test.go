package events

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/tether-hub/tether/internal/testnet"
)

// Issue 17 item 7: one rule for where the hub may send on a
// subscription's behalf — never its own listeners (any address form,
// IPv6 included), loopback only when allowed, never link-local or
// unspecified addresses; private ranges are the operator's receivers.
func TestEndpointPolicy(t *testing.T) {
	own := []netip.AddrPort{
		netip.MustParseAddrPort("0.0.0.0:8883"),    // MQTT on all addresses
		netip.MustParseAddrPort("[::]:8443"),       // HTTPS on all addresses
		netip.MustParseAddrPort("127.0.0.1:6060"),  // pprof on loopback
		netip.MustParseAddrPort("192.0.2.10:1883"), // plain MQTT on one address
	}
	local := []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")}
	for _, allow := range []bool{false, true} {
		p := EndpointPolicy{AllowLoopback: allow, Own: func() []netip.AddrPort { return own },
			localAddrs: func() []netip.Addr { return local }}
		for _, tc := range []struct {
			host string
			port uint16
			ok   bool   // with AllowLoopback
			why  string // refusal contains
		}{
			{"127.0.0.1", 8443, false, "own listeners"},
			{"127.0.0.2", 8443, false, "own listeners"},
			{"::1", 8443, false, "own listeners"},
			{"::ffff:127.0.0.1", 8443, false, "own listeners"},
			{"0:0:0:0:0:0:0:1", 8883, false, "own listeners"},
			{"localhost", 8883, false, "own listeners"},
			{"a.localhost", 6060, false, "own listeners"},
			{"127.0.0.1", 6060, false, "own listeners"},
			{"192.0.2.10", 8443, false, "own listeners"},
			{"2001:db8::10", 8883, false, "own listeners"},
			{"192.0.2.10", 1883, false, "own listeners"},
			{"0.0.0.0", 9000, false, "unspecified"},
			{"::", 9000, false, "unspecified"},
			{"169.254.169.254", 80, false, "link-local"},
			{"fe80::1%eth0", 80, false, "link-local"},
			{"::ffff:169.254.169.254", 80, false, "link-local"},
			{"224.0.0.1", 80, false, "multicast"},
			{"127.1", 9000, false, "canonical"},
			{"2130706433", 9000, false, "canonical"},
			{"0x7f.0.0.1", 9000, false, "canonical"},
			{"0177.0.0.1", 9000, false, "canonical"},
			{"127.0.0.1", 9000, true, "loopback"},
			{"::1", 9000, true, "loopback"},
			{"localhost", 9000, true, "loopback"},
			{"LOCALHOST.", 9000, true, "loopback"},
			{"10.0.0.5", 8443, true, ""},
			{"192.168.1.2", 443, true, ""},
			{"192.0.2.11", 1883, true, ""},
			{"2001:db8::11", 8883, true, ""},
			{"hooks.example.com", 8443, true, ""},
			{"deadbeef", 80, true, ""},
		} {
			err := p.CheckHost(tc.host, tc.port)
			want := tc.ok && (allow || !strings.Contains(tc.why, "loopback"))
			if (err == nil) != want {
				t.Errorf("allow loopback %v: %s port %d: %v, want ok=%v", allow, tc.host, tc.port, err, want)
				continue
			}
			if err != nil && (!errors.Is(err, ErrEndpointRefused) || tc.why != "" && !strings.Contains(err.Error(), tc.why)) {
				t.Errorf("%s port %d: %v, want a refusal saying %q", tc.host, tc.port, err, tc.why)
			}
		}
	}
}

// Control refuses at dial time what a name resolved to: a webhook whose
// DNS name points at the hub is refused when it is dialled.
func TestEndpointPolicyControl(t *testing.T) {
	ln := testnet.ClosingListener(t)
	addr := netip.MustParseAddrPort(ln.Addr().String())
	for _, tc := range []struct {
		p  EndpointPolicy
		ok bool
	}{
		{EndpointPolicy{AllowLoopback: true}, true},
		{EndpointPolicy{}, false},
		{EndpointPolicy{AllowLoopback: true, Own: func() []netip.AddrPort { return []netip.AddrPort{addr} }}, false},
	} {
		d := net.Dialer{Control: tc.p.Control}
		c, err := d.Dial("tcp", "localhost:"+ln.Addr().(*net.TCPAddr).AddrPort().String()[len("127.0.0.1:"):])
		if err == nil {
			c.Close()
		}
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrEndpointRefused) {
			t.Errorf("policy %+v: dial: %v, want ok=%v", tc.p, err, tc.ok)
		}
	}
}
