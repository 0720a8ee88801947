package broker

import (
	"net/netip"
	"strconv"
)

// maskIP hides the host part of a remote address the way IoT Hub logs it:
// "24.9.142.XXX" for IPv4; for IPv6 the last four groups become XXXX. An
// address that is not an IP (or has a zone) gives "".
func maskIP(addr string) string {
	var buf [48]byte
	return string(appendMaskedIP(buf[:0], addr))
}

// appendMaskedIP appends maskIP(addr) to dst, without allocating: every
// connect masks its address once for its records (packStrings).
func appendMaskedIP(dst []byte, addr string) []byte {
	var ip netip.Addr
	if ap, err := netip.ParseAddrPort(addr); err == nil { // a remote address: host and port
		ip = ap.Addr()
	} else if ip, err = netip.ParseAddr(addr); err != nil {
		return dst
	}
	if ip.Zone() != "" {
		return dst
	}
	ip = ip.Unmap()
	if ip.Is4() {
		a := ip.As4()
		for _, v := range a[:3] {
			dst = strconv.AppendUint(dst, uint64(v), 10)
			dst = append(dst, '.')
		}
		return append(dst, "XXX"...)
	}
	a := ip.As16()
	for i := range 4 {
		dst = strconv.AppendUint(dst, uint64(a[2*i])<<8|uint64(a[2*i+1]), 16)
		dst = append(dst, ':')
	}
	return append(dst, "XXXX:XXXX:XXXX:XXXX"...)
}
