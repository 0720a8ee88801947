package broker

import (
	"strings"
	"testing"
)

func TestMaskIP(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"24.9.142.7:50123", "24.9.142.XXX"},
		{"127.0.0.1:1", "127.0.0.XXX"},
		{"10.0.0.255", "10.0.0.XXX"},                    // no port
		{"[::ffff:192.168.1.20]:8883", "192.168.1.XXX"}, // IPv4 mapped into IPv6
		{"[2001:db8:0:a0b::1]:443", "2001:db8:0:a0b:XXXX:XXXX:XXXX:XXXX"},
		{"[2001:DB8:00AB:0::1]:443", "2001:db8:ab:0:XXXX:XXXX:XXXX:XXXX"},
		{"::1", "0:0:0:0:XXXX:XXXX:XXXX:XXXX"},
		{"[fe80::1%eth0]:1883", ""}, // zoned
		{"[::1]", ""},
		{"example.com:8883", ""},
		{"", ""},
		{"1.2.3.4.5:1", ""},
	} {
		if got := maskIP(c.in); got != c.want {
			t.Errorf("maskIP(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestPackStrings(t *testing.T) {
	long := strings.Repeat("d", 300) // past packStrings' stack buffer
	for _, c := range []struct{ device, module, sdk, remote, masked string }{
		{"dev-1", "", "azure-iot-device/1.4", "24.9.142.7:50123", "24.9.142.XXX"},
		{"dev-2", "mod", "", "[2001:db8::1]:443", "2001:db8:0:0:XXXX:XXXX:XXXX:XXXX"},
		{long, "m", long, "127.0.0.1:1", "127.0.0.XXX"},
	} {
		s := &session{remote: c.remote, id: identity{deviceID: c.device, moduleID: c.module, sdkVersion: c.sdk}}
		masked, sid := s.packStrings()
		if s.id.deviceID != c.device || s.id.moduleID != c.module || s.id.sdkVersion != c.sdk || s.remote != c.remote || masked != c.masked {
			t.Errorf("packStrings: %q %q %q %q %q, want %q %q %q %q %q", s.id.deviceID, s.id.moduleID, s.id.sdkVersion, s.remote, masked,
				c.device, c.module, c.sdk, c.remote, c.masked)
		}
		if len(sid) != 32 || strings.Trim(sid, "0123456789abcdef") != "" {
			t.Errorf("session id %q: want 32 hex digits", sid)
		}
		if _, sid2 := s.packStrings(); sid2 == sid {
			t.Errorf("two sessions got the same id %q", sid)
		}
	}
}

// BenchmarkPackStrings: one allocation per connect (the session's string),
// where masking the address and formatting the session id apart made five.
func BenchmarkPackStrings(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		s := session{remote: "24.9.142.7:50123", id: identity{deviceID: "dev-1", sdkVersion: "azure-iot-device/1.4"}}
		s.packStrings()
	}
}
