package probe_test

// Simulated networks for the probe's bad cases, all on loopback: a closed
// port, a listener that accepts and never answers, TLS servers with the
// wrong certificate, an HTTP CONNECT proxy, and a relay that cuts idle
// flows (a NAT or firewall with an idle timeout).

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := portOf(ln.Addr().String())
	ln.Close()
	return p
}

// serve accepts on a loopback port and hands each connection to handle
// (which owns it); everything is closed when the test ends.
func serve(t *testing.T, handle func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); handle(c) }()
		}
	}()
	return portOf(ln.Addr().String())
}

// stallingPort accepts connections and never says anything.
func stallingPort(t *testing.T) int {
	return serve(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
}

// tlsPort serves TLS with cert: handshakes, then holds the connection.
func tlsPort(t *testing.T, cert tls.Certificate) int {
	conf := &tls.Config{Certificates: []tls.Certificate{cert}}
	return serve(t, func(c net.Conn) {
		tc := tls.Server(c, conf)
		_ = tc.Handshake()
		_, _ = io.Copy(io.Discard, tc)
	})
}

// testCA is a CA for certificates the tests need.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial atomic.Int64

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-10 * 365 * 24 * time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a server certificate for names, valid from notBefore to
// notAfter.
func (ca *testCA) issue(t *testing.T, names []string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// connectProxy is an HTTP CONNECT proxy; with user set it wants those
// credentials (407 otherwise). It records the targets it tunnelled to.
type connectProxy struct {
	user, pass string
	mu         sync.Mutex
	tunnels    []string
	refused    int
}

func (p *connectProxy) start(t *testing.T) string {
	port := serve(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if req.Method != http.MethodConnect {
			_, _ = io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
			return
		}
		if p.user != "" && req.Header.Get("Proxy-Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte(p.user+":"+p.pass)) {
			p.mu.Lock()
			p.refused++
			p.mu.Unlock()
			_, _ = io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\n\r\n")
			return
		}
		up, err := net.Dial("tcp", req.Host)
		if err != nil {
			_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
			return
		}
		defer up.Close()
		p.mu.Lock()
		p.tunnels = append(p.tunnels, req.Host)
		p.mu.Unlock()
		_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		done := make(chan struct{})
		go func() { _, _ = io.Copy(up, br); up.(*net.TCPConn).CloseWrite(); close(done) }()
		_, _ = io.Copy(c, up)
		c.(*net.TCPConn).CloseWrite()
		<-done
	})
	return "127.0.0.1:" + itoa(port)
}

func (p *connectProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.tunnels...)
}

// idleRelay forwards a loopback port to the hub's MQTT port and treats
// flows the way a NAT with an idle timeout does: after idle without a byte
// in either direction it closes both sides (mode "close"), resets the
// device's side ("reset"), or silently stops forwarding ("silent": what a
// NAT that forgot the flow looks like from the device).
func idleRelay(t *testing.T, upstream int, idle time.Duration, mode string) int {
	return serve(t, func(dev net.Conn) {
		defer dev.Close()
		hubc, err := net.Dial("tcp", "127.0.0.1:"+itoa(upstream))
		if err != nil {
			return
		}
		defer hubc.Close()
		var last atomic.Int64
		last.Store(time.Now().UnixNano())
		var dead atomic.Bool
		pump := func(dst, src net.Conn, done chan<- struct{}) {
			defer close(done)
			buf := make([]byte, 4096)
			for {
				n, err := src.Read(buf)
				if n > 0 && !dead.Load() {
					last.Store(time.Now().UnixNano())
					if _, werr := dst.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}
		up, down := make(chan struct{}), make(chan struct{})
		go pump(hubc, dev, up)
		go pump(dev, hubc, down)
		tick := time.NewTicker(idle / 20)
		defer tick.Stop()
		for {
			select {
			case <-up:
				return
			case <-down:
				return
			case <-tick.C:
				if dead.Load() || time.Since(time.Unix(0, last.Load())) < idle {
					continue
				}
				switch mode {
				case "silent":
					dead.Store(true) // both pumps go on reading and drop everything
				case "reset":
					_ = dev.(*net.TCPConn).SetLinger(0)
					return
				default:
					return
				}
			}
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
