//go:build unix

package broker

import (
	"errors"
	"io"
	"syscall"
	"time"
)

// drain reads once, without waiting, what the socket holds: bytes, the
// peer's FIN (io.EOF), or nothing (errWoken).
func (c *wakeConn) drain(p []byte) (int, error) {
	rc, err := c.TCPConn.SyscallConn()
	if err != nil {
		return 0, errWoken
	}
	// A RawConn read refuses to start past the deadline wake set; only
	// this reader reads, and it never waits below, so clear it.
	c.mu.Lock()
	_ = c.TCPConn.SetReadDeadline(time.Time{})
	c.mu.Unlock()
	var n int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), p)
		return true // one attempt: never wait for more input
	}); err != nil {
		return 0, errWoken
	}
	switch {
	case errors.Is(rerr, syscall.EAGAIN), errors.Is(rerr, syscall.EINTR):
		return 0, errWoken
	case rerr != nil:
		return 0, rerr
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}
