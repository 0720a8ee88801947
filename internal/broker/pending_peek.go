//go:build linux || darwin || freebsd || netbsd || openbsd

package broker

import (
	"net"
	"syscall"
)

// socketReadable peeks at c's socket without taking its read lock (the
// connection's own goroutine may be parked in Read holding it).
func socketReadable(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	readable := false
	_ = rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		readable = err == nil && n >= 0 // 0: the peer's FIN
	})
	return readable
}
