package broker

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/tether-hub/tether/internal/certs"
)

// BenchmarkTLSHandshake is one full TLS 1.2 handshake, client and server
// in this process over net.Pipe, with the bench's client (connstorm's
// tls12: ECDHE-ECDSA-AES128-GCM-SHA256, P-256, no session cache) against
// bare mochi's server config (Go defaults) and Tether's (TLS 1.2 minimum,
// client certificates requested for X.509 devices): what the listener's
// config adds to a handshake (bench/README.md, issue 10 session 14).
//
//	go test -run '^$' -bench TLSHandshake -benchtime 2000x -count 4 ./internal/broker/
func BenchmarkTLSHandshake(b *testing.B) {
	cert, err := certs.EnsureDev(b.TempDir(), []string{"127.0.0.1", "localhost"})
	if err != nil {
		b.Fatal(err)
	}
	client := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, CurvePreferences: []tls.CurveID{tls.CurveP256}}
	for _, c := range []struct {
		name string
		srv  *tls.Config
	}{
		{"bare-mochi", &tls.Config{Certificates: []tls.Certificate{cert}}},
		{"tether", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, ClientAuth: tls.RequestClientCert}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sc, cc := net.Pipe()
				done := make(chan error, 1)
				go func() { done <- tls.Client(cc, client).Handshake() }()
				err := tls.Server(sc, c.srv).Handshake()
				if cerr := <-done; err == nil {
					err = cerr
				}
				sc.Close()
				cc.Close()
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
