package app

import (
	"net"
	"net/netip"
	"strconv"
)

// ownListeners is every address the hub listens on — configured and, once
// bound, actual (port 0 in tests) — for events.EndpointPolicy: a webhook
// may never point at the hub itself. Safe from any goroutine.
func (a *App) ownListeners() []netip.AddrPort {
	var out []netip.AddrPort
	for _, addr := range []string{a.cfg.MQTTAddr, a.cfg.HTTPSAddr, a.cfg.TCPAddr, a.cfg.DebugAddr} {
		out = append(out, listenAddrs(addr)...)
	}
	if b := a.bound.Load(); b != nil {
		out = append(out, *b...)
	}
	return out
}

// noteListeners records the bound addresses of the listeners started so
// far (addresses as net.Listener.Addr().String(); "" for one that is off). Start
// calls it, one goroutine.
func (a *App) noteListeners(addrs ...string) {
	var out []netip.AddrPort
	if b := a.bound.Load(); b != nil {
		out = append(out, *b...)
	}
	for _, addr := range addrs {
		out = append(out, listenAddrs(addr)...)
	}
	a.bound.Store(&out)
}

// listenAddrs reads a listen address: ":8883" and "0.0.0.0:…" are every
// address (IPv4 and IPv6), "localhost:…" the loopback ones; port 0 is
// nothing yet.
func listenAddrs(addr string) []netip.AddrPort {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || port == 0 {
		return nil
	}
	var ips []netip.Addr
	switch host {
	case "":
		ips = []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}
	case "localhost":
		ips = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}
	default:
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return nil
		}
		ips = []netip.Addr{ip}
	}
	var out []netip.AddrPort
	for _, ip := range ips {
		out = append(out, netip.AddrPortFrom(ip, uint16(port)))
	}
	return out
}
