package broker

import (
	"net"
	"strings"
)

// maskIP hides the host part of a remote address the way IoT Hub logs it:
// "24.9.142.XXX" for IPv4; for IPv6 the last four groups become XXXX.
func maskIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return ""
	}
	if v4 := ip.To4(); v4 != nil {
		s := v4.String()
		return s[:strings.LastIndexByte(s, '.')] + ".XXX"
	}
	full := ip.To16()
	parts := make([]string, 0, 8)
	for i := 0; i < 8; i++ {
		if i >= 4 {
			parts = append(parts, "XXXX")
			continue
		}
		parts = append(parts, strings.ToLower(hex4(uint16(full[2*i])<<8|uint16(full[2*i+1]))))
	}
	return strings.Join(parts, ":")
}

func hex4(v uint16) string {
	const digits = "0123456789abcdef"
	b := []byte{digits[v>>12], digits[v>>8&15], digits[v>>4&15], digits[v&15]}
	i := 0
	for i < 3 && b[i] == '0' {
		i++
	}
	return string(b[i:])
}
