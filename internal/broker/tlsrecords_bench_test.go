package broker

import (
	"crypto/tls"
	"io"
	"net"
	"testing"

	"github.com/tether-hub/tether/internal/certs"
)

// BenchmarkTLSRecords reads pipelined 64-byte TLS records (a QoS 1
// telemetry stream: 32 records per TCP write) on the server side, straight
// from the socket as before recordConn and through recordConn, which hands
// crypto/tls one record at a time (its cost per message).
//
//	go test -run X -bench TLSRecords ./internal/broker/
func BenchmarkTLSRecords(b *testing.B) {
	cert, err := certs.EnsureDev(b.TempDir(), []string{"127.0.0.1"})
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"direct", "recordConn"} {
		b.Run(mode, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			const batch = 32
			done := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					done <- err
					return
				}
				defer c.Close()
				src := c
				if mode == "recordConn" {
					src = &recordConn{Conn: c}
				}
				tc := tls.Server(src, &tls.Config{Certificates: []tls.Certificate{cert}})
				_, err = io.Copy(io.Discard, tc)
				done <- err
			}()
			raw, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			bc := &batchConn{Conn: raw}
			tc := tls.Client(bc, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
			if err := tc.Handshake(); err != nil {
				b.Fatal(err)
			}
			msg := make([]byte, 64)
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				bc.mu.Lock()
				bc.batching = true
				bc.mu.Unlock()
				for range batch {
					if _, err := tc.Write(msg); err != nil {
						b.Fatal(err)
					}
				}
				if err := bc.flush(); err != nil {
					b.Fatal(err)
				}
			}
			_ = tc.Close()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}
