//go:build linux

package broker

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The poller answers a PINGREQ itself only while the socket has room
// (writableNow): a device that does not read what it is sent must not
// hold the poller that every parked session shares for the write timeout.
func TestWritableNowFollowsTheSendBuffer(t *testing.T) {
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
	_ = client.(*net.TCPConn).SetReadBuffer(4096)
	_ = server.(*net.TCPConn).SetWriteBuffer(4096)
	rc, err := server.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int32
	_ = rc.Control(func(u uintptr) { fd = int32(u) })
	if !writableNow(fd) {
		t.Fatal("a fresh socket is not writable")
	}
	// Fill the socket (the client reads nothing) with non-blocking writes.
	chunk := make([]byte, 4096)
	written := 0
	var werr error
	_ = rc.Write(func(u uintptr) bool {
		for {
			n, err := unix.Write(int(u), chunk)
			if err != nil {
				werr = err
				return true
			}
			written += n
		}
	})
	if !errors.Is(werr, syscall.EAGAIN) {
		t.Fatalf("filling the socket: %v after %d bytes", werr, written)
	}
	if writableNow(fd) {
		t.Fatalf("writable with %d bytes unread", written)
	}
	// Once the client has read it all, there is room again.
	if _, err := io.ReadFull(client, make([]byte, written)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !writableNow(fd) {
		if time.Now().After(deadline) {
			t.Fatal("not writable after the client read everything")
		}
		time.Sleep(time.Millisecond)
	}
}
