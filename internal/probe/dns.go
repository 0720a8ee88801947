package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// DNSResult is what step 1 found.
type DNSResult struct {
	Host      string   `json:"host"`
	Addresses []string `json:"addresses"`
	// IPLiteral: the host is an address; nothing was looked up.
	IPLiteral bool   `json:"ipLiteral,omitempty"`
	Error     string `json:"error,omitempty"`
	NotFound  bool   `json:"notFound,omitempty"`
	Timeout   bool   `json:"timeout,omitempty"`
}

// dnsStep resolves the host the device dials, with the system's resolver
// (what the SDKs use).
func (r *run) dnsStep(ctx context.Context) Step {
	host := r.t.dialHost
	s := r.newStep(StepDNS, host)
	res := &DNSResult{Host: host}
	s.DNS = res
	if ip := net.ParseIP(host); ip != nil {
		r.addrs = []net.IP{ip}
		res.IPLiteral, res.Addresses = true, []string{ip.String()}
		s.Status, s.Summary = Pass, "an IP address: nothing to look up"
		return s
	}
	ctx, cancel := context.WithTimeout(ctx, r.t.timeout)
	defer cancel()
	start := time.Now()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	took := time.Since(start)
	s.Millis = ms(took)
	if err != nil {
		res.Error = errText(err)
		var de *net.DNSError
		if errors.As(err, &de) {
			res.NotFound, res.Timeout = de.IsNotFound, de.IsTimeout
		}
		if errors.Is(err, context.DeadlineExceeded) {
			res.Timeout = true
		}
		s.Status = Fail
		switch {
		case res.NotFound:
			s.Summary = fmt.Sprintf("no such host: the DNS has no address for %s", host)
			s.Hint = "check HostName in the connection string (a typo, or a hub that was deleted or renamed); a private DNS zone (private endpoint) must be reachable from the device's network"
		case res.Timeout:
			s.Summary = fmt.Sprintf("no answer from the DNS server within %s", r.t.timeout)
			s.Hint = "the device's DNS server is unreachable or slow: check its network settings (/etc/resolv.conf) and that outbound DNS (UDP/TCP 53) is allowed"
		default:
			s.Summary = "lookup failed: " + res.Error
			s.Hint = "check the device's DNS configuration"
		}
		if r.t.proxy != nil {
			s.Notes = append(s.Notes, "with a proxy, the proxy resolves the name for the HTTPS port: steps through it still run")
		}
		return s
	}
	var v4, v6 int
	for _, ip := range ips {
		r.addrs = append(r.addrs, ip.IP)
		res.Addresses = append(res.Addresses, ip.IP.String())
		if ip.IP.To4() != nil {
			v4++
		} else {
			v6++
		}
	}
	s.Status = Pass
	s.Summary = strings.Join(res.Addresses, ", ")
	if took > 2*time.Second {
		s.Status = Warn
		s.Hint = "the lookup was slow: every (re)connect of the device pays this; check the DNS server"
	}
	for _, ip := range r.addrs {
		if ip.IsLoopback() && !isLocalName(host) {
			s.Notes = append(s.Notes, fmt.Sprintf("%s resolves to a loopback address (%s): an entry in /etc/hosts?", host, ip))
			break
		}
	}
	return s
}

func isLocalName(host string) bool {
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// roundDur rounds for display: µs under 1 ms, else 0.1 ms under 1 s, else ms.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < time.Second:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
