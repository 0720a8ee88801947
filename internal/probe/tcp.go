package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// TCPResult is what step 2 found on one port.
type TCPResult struct {
	// Address is the ip:port that connected (empty when none did).
	Address  string    `json:"address,omitempty"`
	Outcome  Outcome   `json:"outcome"`
	Attempts []Attempt `json:"attempts,omitempty"`
	// Proxy is set when the port was reached through the proxy.
	Proxy *ProxyResult `json:"proxy,omitempty"`
}

// Attempt is one connection attempt to one address.
type Attempt struct {
	Address string  `json:"address"`
	Outcome Outcome `json:"outcome"`
	Millis  float64 `json:"ms"`
	Error   string  `json:"error,omitempty"`
}

// tcpStep connects to port on each address of step 1 in turn, as a
// device's dialer does, until one connects.
func (r *run) tcpStep(ctx context.Context, port int) Step {
	s := r.newStep(StepTCP, joinHostPort(r.t.dialHost, port))
	if !r.needs(&s, StepDNS, r.t.dialHost) {
		return s
	}
	res := &TCPResult{Outcome: OtherError}
	s.TCP = res
	for _, ip := range r.addrs {
		addr := net.JoinHostPort(ip.String(), strconv.Itoa(port))
		start := time.Now()
		nc, err := (&net.Dialer{Timeout: r.t.timeout}).DialContext(ctx, "tcp", addr)
		a := Attempt{Address: addr, Outcome: classify(err), Millis: ms(time.Since(start)), Error: errText(err)}
		res.Attempts = append(res.Attempts, a)
		if err == nil {
			nc.Close()
			res.Address, res.Outcome = addr, Connected
			r.addr[port] = addr
			break
		}
		if ctx.Err() != nil {
			break
		}
	}
	last := res.Attempts[len(res.Attempts)-1]
	if res.Address != "" {
		s.Status = Pass
		s.Summary = "connected to " + res.Address
		for _, a := range res.Attempts[:len(res.Attempts)-1] {
			s.Notes = append(s.Notes, fmt.Sprintf("%s first: %s (a device that tries it first loses that time on every connect)", a.Address, describeOutcome(a.Outcome, r.t.timeout)))
		}
		return s
	}
	s.Status = Fail
	res.Outcome = last.Outcome
	var parts []string
	for _, a := range res.Attempts {
		parts = append(parts, a.Address+": "+describeOutcome(a.Outcome, r.t.timeout))
	}
	s.Summary = strings.Join(parts, "; ")
	s.Hint = tcpHint(res.Outcome, port, r.t.httpsPort == port)
	return s
}

// httpsTCPStep is step 2 for the HTTPS port: direct, or the tunnel
// through the proxy (which resolves the hub's name itself).
func (r *run) httpsTCPStep(ctx context.Context) Step {
	if r.t.proxy == nil {
		return r.tcpStep(ctx, r.t.httpsPort)
	}
	s := r.newStep(StepTCP, r.httpsTarget())
	start := time.Now()
	nc, pres, err := tunnel(ctx, r.t.proxy, r.httpsTarget(), r.t.timeout)
	s.Millis = ms(time.Since(start))
	s.TCP = &TCPResult{Outcome: classify(err), Proxy: pres}
	if err != nil {
		s.Status = Fail
		var pe *proxyError
		if errors.As(err, &pe) {
			s.TCP.Outcome = Refused
		}
		s.Summary, s.Hint = proxyHint(err, r.t.proxy.Host, r.httpsTarget())
		return s
	}
	nc.Close()
	s.TCP.Address = r.httpsTarget()
	s.Status = Pass
	s.Summary = fmt.Sprintf("tunnel through proxy %s open (%s)", r.t.proxy.Host, pres.StatusLine)
	return s
}

// dial opens a TCP connection to port the way step 2 found to work.
func (r *run) dial(ctx context.Context, port int) (net.Conn, error) {
	if port == r.t.httpsPort && r.t.proxy != nil {
		nc, _, err := tunnel(ctx, r.t.proxy, r.httpsTarget(), r.t.timeout)
		return nc, err
	}
	addr := r.addr[port]
	if addr == "" {
		addr = joinHostPort(r.t.dialHost, port)
	}
	return (&net.Dialer{Timeout: r.t.timeout}).DialContext(ctx, "tcp", addr)
}

func describeOutcome(o Outcome, timeout time.Duration) string {
	switch o {
	case Refused:
		return "refused"
	case TimedOut:
		return "no answer within " + timeout.String() + " (dropped)"
	case Unreachable:
		return "no route to host"
	}
	return string(o)
}

func tcpHint(o Outcome, port int, https bool) string {
	alt := "MQTT over WebSockets on the HTTPS port (step 6) is the way around a blocked MQTT port"
	if https {
		alt = "without 443 there is no MQTT over WebSockets; a proxy (--proxy) may be the way out of this network"
	}
	switch o {
	case Refused:
		return fmt.Sprintf("nothing listens on port %d there, or a firewall rejects the connection: check the hub's port (Tether: serve --mqtt-addr/--https-addr) and the firewalls on the way; %s", port, alt)
	case TimedOut:
		return fmt.Sprintf("packets to port %d are dropped without an answer: typically a firewall that blocks outbound %d; open it to the hub, or: %s", port, port, alt)
	case Unreachable:
		return "the device has no route to the hub's network: check its gateway, VPN or routes"
	}
	return "check the device's network"
}
