//go:build unix

package delivery

import (
	"net"
	"syscall"
)

// alive reports whether an idle kept connection is still open: the
// endpoint has neither closed it (a read would see end of file) nor sent
// anything unasked. One non-blocking peek at the socket; a connection that
// cannot be checked counts as closed.
func alive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		// Data or end of file (n ≥ 0) both mean the connection is done for.
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true // never wait
	})
	return err == nil && open
}
