package testnet

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echoServer answers each line with the same line.
func echoServer(t *testing.T) (addr string, accepted chan net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
			go func() {
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					_, _ = c.Write([]byte(line))
				}
			}()
		}
	}()
	return ln.Addr().String(), accepted
}

func TestBlackholeHoldsTrafficUntilHealed(t *testing.T) {
	addr, _ := echoServer(t)
	p := NewProxy(t, addr)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(line string) {
		if _, err := c.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	say("one")
	if got, err := r.ReadString('\n'); err != nil || got != "one\n" {
		t.Fatalf("before the blackhole: %q, %v", got, err)
	}
	p.Blackhole()
	say("two")
	// Nothing comes back, and the connection is not closed: the read
	// times out.
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if got, err := r.ReadString('\n'); err == nil || !isTimeout(err) {
		t.Fatalf("during the blackhole: %q, %v; want a timeout", got, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	p.Heal()
	if got, err := r.ReadString('\n'); err != nil || got != "two\n" {
		t.Fatalf("after healing: %q, %v; want the held line", got, err)
	}
}

func TestSeverClosesTheServersSideOnly(t *testing.T) {
	addr, accepted := echoServer(t)
	p := NewProxy(t, addr)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := <-accepted
	p.Sever()
	// The server sees its connection end.
	_ = srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := srv.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("the server's side still open after Sever: %v", err)
	}
	// The client's side stays open and hears nothing.
	if _, err := c.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("the client's side: %v, want silence (a timeout)", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
