package broker

import (
	"net"
	"runtime"
	"testing"
	"time"
)

// socketReadable tells an idle socket from one with unread bytes or the
// peer's FIN, without consuming anything.
func TestSocketReadable(t *testing.T) {
	switch runtime.GOOS {
	case "linux", "darwin", "freebsd", "netbsd", "openbsd":
	default:
		t.Skip("no peek on " + runtime.GOOS)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	if socketReadable(server) {
		t.Fatal("idle socket reads as readable")
	}
	if _, err := client.Write([]byte{0xE0, 0}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return socketReadable(server) }, "unread bytes")
	if !socketReadable(server) {
		t.Fatal("the peek consumed the bytes")
	}
	var b [2]byte
	if _, err := server.Read(b[:]); err != nil || b != [2]byte{0xE0, 0} {
		t.Fatalf("read % x, %v", b, err)
	}
	if socketReadable(server) {
		t.Fatal("readable after everything was read")
	}
	client.Close()
	waitFor(t, func() bool { return socketReadable(server) }, "the peer's FIN")

	tc := &trackedConn{Conn: server, sock: socketOf(server)}
	if !tc.inputPending() {
		t.Fatal("a reader not parked in Read has input pending")
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
