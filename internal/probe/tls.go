package probe

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// TLSResult is what step 3 found on one port.
type TLSResult struct {
	Version     string `json:"version,omitempty"`
	CipherSuite string `json:"cipherSuite,omitempty"`
	// ServerName is the SNI sent (none for an IP address).
	ServerName string     `json:"serverName,omitempty"`
	Chain      []CertInfo `json:"chain,omitempty"`
	// Verified: the chain verifies against the trust in force (Report.Trust)
	// by this machine's clock, and names the host.
	Verified    bool   `json:"verified"`
	VerifyError string `json:"verifyError,omitempty"`
	// Problem classifies a failure: handshake, untrusted, expired,
	// not-yet-valid, hostname.
	Problem string `json:"problem,omitempty"`
	// SystemTrusted: the chain also verifies against the system store
	// (checked when --ca is in force).
	SystemTrusted bool `json:"systemTrusted"`
	HostnameMatch bool `json:"hostnameMatch"`
	// InterceptionSuspected: the issuer is not what this hub uses (see
	// the step's summary).
	InterceptionSuspected bool `json:"interceptionSuspected,omitempty"`
}

// CertInfo describes one certificate the server sent.
type CertInfo struct {
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	NotBefore   time.Time `json:"notBefore"`
	NotAfter    time.Time `json:"notAfter"`
	DNSNames    []string  `json:"dnsNames,omitempty"`
	IPAddresses []string  `json:"ipAddresses,omitempty"`
	SHA256      string    `json:"sha256"`
}

// expiryWarning is how close to its end a certificate earns a warning.
const expiryWarning = 30 * 24 * time.Hour

// tlsConfig is what a device uses: the trust in force, the host name,
// TLS 1.2 at least (IoT Hub's minimum), and the device's clock.
func (r *run) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: r.t.roots, ServerName: r.t.dialHost, MinVersion: tls.VersionTLS12, Time: r.t.now}
}

// tlsStep handshakes on port without verifying, then verifies what the
// server sent step by step, so every problem is named, not only the first
// one crypto/tls would stop at.
func (r *run) tlsStep(ctx context.Context, port int) Step {
	target := joinHostPort(r.t.dialHost, port)
	s := r.newStep(StepTLS, target)
	if !r.needs(&s, StepTCP, target) {
		return s
	}
	res := &TLSResult{}
	s.TLS = res
	if net.ParseIP(r.t.dialHost) == nil {
		res.ServerName = r.t.dialHost
	}
	nc, err := r.dial(ctx, port)
	if err != nil {
		s.Status, s.Summary = Fail, "could not connect again: "+errText(err)
		return s
	}
	defer nc.Close()
	conf := r.tlsConfig()
	conf.InsecureSkipVerify = true // verified below, with every finding kept
	tc := tls.Client(nc, conf)
	hctx, cancel := context.WithTimeout(ctx, r.t.timeout)
	defer cancel()
	start := time.Now()
	err = tc.HandshakeContext(hctx)
	s.Millis = ms(time.Since(start))
	if err != nil {
		res.Problem, res.VerifyError = "handshake", errText(err)
		s.Status = Fail
		s.Summary, s.Hint = handshakeFailure(err, r.t.timeout)
		return s
	}
	cs := tc.ConnectionState()
	res.Version = tls.VersionName(cs.Version)
	res.CipherSuite = tls.CipherSuiteName(cs.CipherSuite)
	for _, c := range cs.PeerCertificates {
		res.Chain = append(res.Chain, certInfo(c))
	}
	r.tls[port] = res
	r.verify(&s, cs.PeerCertificates)
	r.compareIssuers(&s, port)
	return s
}

func certInfo(c *x509.Certificate) CertInfo {
	sum := sha256.Sum256(c.Raw)
	ci := CertInfo{
		Subject: c.Subject.String(), Issuer: c.Issuer.String(),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		DNSNames: c.DNSNames, SHA256: hex.EncodeToString(sum[:]),
	}
	for _, ip := range c.IPAddresses {
		ci.IPAddresses = append(ci.IPAddresses, ip.String())
	}
	return ci
}

// verify checks chain, dates and name separately and sets the step's
// verdict.
func (r *run) verify(s *Step, certs []*x509.Certificate) {
	res := s.TLS
	leaf := certs[0]
	now := r.t.now()
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: r.t.roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	_, chainErr := leaf.Verify(opts)
	// The chain judged at a time inside the leaf's validity tells an
	// untrusted issuer from a date problem.
	opts.CurrentTime = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	_, trustErr := leaf.Verify(opts)
	if r.t.roots != nil {
		sys := opts
		sys.Roots = nil
		_, err := leaf.Verify(sys)
		res.SystemTrusted = err == nil
	} else {
		res.SystemTrusted = trustErr == nil
	}
	nameErr := leaf.VerifyHostname(r.t.dialHost)
	res.HostnameMatch = nameErr == nil
	trust := "the system store"
	if r.t.roots != nil {
		trust = caLabel(r.t.caName)
	}
	issuer := firstNonEmpty(leaf.Issuer.CommonName, leaf.Issuer.String())
	switch {
	case trustErr != nil:
		res.Problem, res.VerifyError = "untrusted", errText(trustErr)
		s.Status = Fail
		s.Summary = fmt.Sprintf("certificate %q issued by %q is not trusted by %s", leaf.Subject.CommonName, issuer, trust)
		s.Hint, res.InterceptionSuspected = untrustedHint(r.t.roots != nil, res.SystemTrusted, trust)
	case !now.Before(leaf.NotAfter):
		res.Problem, res.VerifyError = "expired", errText(chainErr)
		s.Status = Fail
		s.Summary = fmt.Sprintf("certificate expired on %s (this machine's clock says %s)", day(leaf.NotAfter), day(now))
		s.Hint = "the hub's certificate must be renewed (Tether: --tls-cert/--tls-key; dev certificates are re-issued by serve --dev); if that date is still to come, this machine's clock is wrong (step 4)"
	case now.Before(leaf.NotBefore):
		res.Problem, res.VerifyError = "not-yet-valid", errText(chainErr)
		s.Status = Fail
		s.Summary = fmt.Sprintf("certificate is not valid before %s, and this machine's clock says %s", leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		s.Hint = "this machine's clock is probably behind (step 4): a device without a battery-backed clock needs NTP before it connects"
	case chainErr != nil:
		res.Problem, res.VerifyError = "expired", errText(chainErr)
		s.Status = Fail
		s.Summary = "a certificate of the chain is outside its validity dates: " + errText(chainErr)
		s.Hint = "an intermediate or root certificate expired: the hub must send a current chain"
	case nameErr != nil:
		res.Problem, res.VerifyError = "hostname", errText(nameErr)
		s.Status = Fail
		s.Summary = fmt.Sprintf("certificate is for %s, not %s", certNames(leaf), r.t.dialHost)
		s.Hint = "the device dials a name the certificate does not cover: use the hub's own name in HostName/GatewayHostName, or re-issue the certificate with this name (Tether: serve --hub-name; IP addresses need an IP SAN)"
	default:
		res.Verified = true
		s.Status = Pass
		s.Summary = fmt.Sprintf("%s %s, %q issued by %q, valid until %s", res.Version, res.CipherSuite, leaf.Subject.CommonName, issuer, leaf.NotAfter.UTC().Format(time.DateOnly))
		if left := leaf.NotAfter.Sub(now); left < expiryWarning {
			s.Status = Warn
			s.Hint = fmt.Sprintf("the certificate expires in %s: renew it before devices are refused", left.Round(time.Hour))
		}
		if suspectAzureInterception(r.t.dialHost, certs) {
			res.InterceptionSuspected = true
			s.Status = Warn
			s.Notes = append(s.Notes, fmt.Sprintf("an Azure IoT hub's certificate chains to DigiCert/Microsoft; this one is issued by %q: a middlebox intercepts TLS with a CA this machine trusts", issuer))
		}
	}
}

func untrustedHint(caGiven, systemTrusted bool, trust string) (string, bool) {
	switch {
	case caGiven && systemTrusted:
		return "the server's certificate is publicly trusted but not by " + trust + ": the --ca file is for another hub, or drop --ca to use the system store", false
	case caGiven:
		return "the server is not signed by the CA you trust: another server answers on this port, or a middlebox intercepts TLS (a corporate proxy or firewall that re-signs certificates); compare the issuer with your hub's CA, and exempt the hub from TLS inspection", true
	}
	return "pass the hub's CA with --ca (a private CA, e.g. Tether's tether-data/ca.pem), or, if the hub has a public certificate, a middlebox intercepts TLS: exempt the hub's host from TLS inspection", true
}

// handshakeFailure explains a handshake that did not complete.
func handshakeFailure(err error, timeout time.Duration) (string, string) {
	var rec tls.RecordHeaderError
	var alert tls.AlertError
	switch {
	case errors.As(err, &rec):
		return "the server does not speak TLS: " + errText(err),
			"something else listens on this port (plain MQTT? HTTP?): check the port, or a transparent proxy that answers in clear"
	case errors.As(err, &alert):
		return "the server refused the handshake: " + errText(err),
			"the server wants something this client did not offer (TLS 1.2+, a client certificate, or a known server name)"
	}
	switch classify(err) {
	case TimedOut:
		return fmt.Sprintf("TCP connects but the TLS handshake got no answer within %s", timeout),
			"something accepts connections on this port and then stalls: a firewall or transparent proxy that holds flows it will not pass, or a service that is not the hub"
	case Closed, Reset:
		return "the connection was closed during the TLS handshake (" + errText(err) + ")",
			"a firewall or middlebox that inspects TLS cut the flow, or the server refuses this client (TLS version, SNI)"
	}
	return "TLS handshake failed: " + errText(err), "check that the port serves TLS 1.2 or later"
}

// suspectAzureInterception: Azure IoT hubs present certificates that chain
// to DigiCert (Microsoft issuing CAs); anything else on such a host, even
// a chain the machine trusts, comes from a middlebox.
func suspectAzureInterception(host string, certs []*x509.Certificate) bool {
	if !strings.HasSuffix(strings.ToLower(host), ".azure-devices.net") {
		return false
	}
	for _, c := range certs {
		for _, n := range append(c.Issuer.Organization, c.Issuer.CommonName) {
			if strings.Contains(n, "Microsoft") || strings.Contains(n, "DigiCert") {
				return false
			}
		}
	}
	return true
}

// compareIssuers warns when the two ports present certificates from
// different issuers: the hub uses one certificate; a difference means one
// path is intercepted or served by something else.
func (r *run) compareIssuers(s *Step, port int) {
	other := r.t.mqttPort
	if port == other {
		return
	}
	a, b := r.tls[other], r.tls[port]
	if a == nil || b == nil || len(a.Chain) == 0 || len(b.Chain) == 0 || a.Chain[0].Issuer == b.Chain[0].Issuer {
		return
	}
	if s.Status == Pass {
		s.Status = Warn
	}
	b.InterceptionSuspected = true
	s.Notes = append(s.Notes, fmt.Sprintf("port %d presents a certificate issued by %q, port %d one issued by %q: one of the two paths is intercepted or answered by another server", r.t.mqttPort, a.Chain[0].Issuer, port, b.Chain[0].Issuer))
}

func certNames(c *x509.Certificate) string {
	names := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName+" (common name only: not accepted by modern clients)")
	}
	if len(names) == 0 {
		return "no name"
	}
	return strings.Join(names, ", ")
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
