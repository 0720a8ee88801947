package events

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
)

// ErrEndpointRefused: a webhook endpoint's address is not one the hub may
// send to (EndpointPolicy).
var ErrEndpointRefused = errors.New("endpoint address refused")

// EndpointPolicy is the one rule for where the hub's own HTTP requests on
// a subscription's behalf (validation handshake, deliveries) may go: a
// subscription is defined by any caller with ServiceConnect, and the hub
// must not become their way into what only the hub's machine can reach.
//
//   - The hub's own listeners (MQTT, HTTPS, plain TCP, the debug/pprof
//     port), on any address of this machine: never.
//   - Unspecified (0.0.0.0, ::), link-local (169.254.0.0/16 — cloud
//     metadata services —, fe80::/10) and multicast addresses: never.
//   - Loopback (127.0.0.0/8, ::1, IPv4-mapped forms included, and the
//     names localhost / *.localhost): only with AllowLoopback (tether serve
//     --allow-loopback-endpoints; on by default with --dev).
//   - Anything else, private ranges included (receivers usually live on
//     the operator's network): allowed.
//
// CheckHost applies it to a URL's host when a subscription is defined;
// Control applies it to the address every connection actually dials, so
// a DNS name that resolves (or later rebinds) to a refused address is
// refused too. The zero value refuses loopback and knows no listeners.
type EndpointPolicy struct {
	AllowLoopback bool
	// Own returns the hub's listening addresses; nil: none.
	Own func() []netip.AddrPort
	// localAddrs returns this machine's interface addresses; nil:
	// net.InterfaceAddrs (tests replace it).
	localAddrs func() []netip.Addr
}

// CheckAddr reports whether the hub may connect to a; the error says why
// not, in words for whoever defined the subscription.
func (p EndpointPolicy) CheckAddr(a netip.AddrPort) error {
	ip := a.Addr().Unmap().WithZone("")
	refuse := func(why string) error {
		return fmt.Errorf("%w: %s %s", ErrEndpointRefused, netip.AddrPortFrom(ip, a.Port()), why)
	}
	switch {
	case !ip.IsValid():
		return refuse("is not an address")
	case ip.IsUnspecified():
		return refuse("is the unspecified address (this machine)")
	case ip.IsLinkLocalUnicast():
		return refuse("is link-local (where cloud metadata services answer)")
	case ip.IsMulticast():
		return refuse("is a multicast address")
	}
	if p.isOwn(ip, a.Port()) {
		return refuse("is one of the hub's own listeners")
	}
	if ip.IsLoopback() && !p.AllowLoopback {
		return refuse("is loopback (this machine); the hub accepts loopback endpoints only when started with --allow-loopback-endpoints")
	}
	return nil
}

// CheckHost checks a URL's host and port when a subscription is defined:
// IP literals (IPv6 in any form) and loopback names by CheckAddr, numbers
// that are not a canonical IP address ("127.1", "2130706433", "0x7f.1",
// which some resolvers read as addresses) refused; other names are checked
// when they are dialled (Control).
func (p EndpointPolicy) CheckHost(host string, port uint16) error {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if ip, err := netip.ParseAddr(h); err == nil {
		return p.CheckAddr(netip.AddrPortFrom(ip, port))
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		for _, ip := range []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()} {
			if err := p.CheckAddr(netip.AddrPortFrom(ip, port)); err != nil {
				return err
			}
		}
		return nil
	}
	if numericHost(h) {
		return fmt.Errorf("%w: %q is not a canonical IP address (write IPv4 as four decimal numbers, e.g. 10.0.0.1)", ErrEndpointRefused, host)
	}
	return nil
}

// numericHost reports whether every label of h is a number (decimal,
// octal or 0x-hex): a form that inet_aton-style resolvers read as an
// address.
func numericHost(h string) bool {
	if h == "" {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" {
			return false
		}
		if x, ok := strings.CutPrefix(l, "0x"); ok {
			if _, err := strconv.ParseUint(x, 16, 64); err != nil && x != "" {
				return false
			}
			continue
		}
		if _, err := strconv.ParseUint(l, 10, 64); err != nil {
			return false
		}
	}
	return true
}

// Control is a net.Dialer Control function applying CheckAddr to the
// address each connection dials (after name resolution).
func (p EndpointPolicy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read dialled address %q: %v", ErrEndpointRefused, address, err)
	}
	return p.CheckAddr(ap)
}

// isOwn reports whether ip:port is one of the hub's listeners: the same
// port, and the listener's address, or — for a listener on all addresses
// — any address of this machine.
func (p EndpointPolicy) isOwn(ip netip.Addr, port uint16) bool {
	if p.Own == nil {
		return false
	}
	local := func() bool {
		if ip.IsLoopback() {
			return true
		}
		addrs := p.localAddrs
		if addrs == nil {
			addrs = interfaceAddrs
		}
		for _, a := range addrs() {
			if a.Unmap() == ip {
				return true
			}
		}
		return false
	}
	for _, l := range p.Own() {
		if l.Port() != port {
			continue
		}
		lip := l.Addr().Unmap().WithZone("")
		if lip == ip || lip.IsUnspecified() && local() || lip.IsLoopback() && ip.IsLoopback() {
			return true
		}
	}
	return false
}

func interfaceAddrs() []netip.Addr {
	as, _ := net.InterfaceAddrs()
	var out []netip.Addr
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}
