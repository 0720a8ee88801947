// Package testnet holds network helpers for tests of several packages
// (it imports nothing of Tether's, so any test package can use it).
package testnet

import (
	"net"
	"testing"
)

// ClosingListener listens on 127.0.0.1 port 0 and closes every
// connection it accepts: an address that answers a dial (a node that is
// "up", a webhook host that resolves) without speaking any protocol. It
// is closed when t ends.
func ClosingListener(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}
