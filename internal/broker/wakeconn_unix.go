//go:build unix

package broker

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// drain reads, without waiting, what the socket held when the drain began:
// bytes, then errWoken; or the peer's FIN (io.EOF).
func (c *wakeConn) drain(p []byte) (int, error) {
	rc, err := c.TCPConn.SyscallConn()
	if err != nil {
		return 0, errWoken
	}
	if c.left < 0 {
		// A RawConn read refuses to start past the deadline wake set;
		// only this reader reads, and it never waits below, so clear it.
		c.mu.Lock()
		_ = c.TCPConn.SetReadDeadline(time.Time{})
		c.mu.Unlock()
		c.left = 0
		_ = rc.Control(func(fd uintptr) { c.left = int32(min(receiveQueue(fd), 1<<30)) })
	}
	if c.left == 0 {
		// Nothing more to hand up; one byte's read still tells a FIN.
		p = p[:min(len(p), 1)]
	} else {
		p = p[:min(len(p), int(c.left))]
	}
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
	case c.left == 0:
		return 0, errWoken // arrived after the wake: not read
	}
	c.left -= int32(n)
	return n, nil
}

// readNow is the TCP read of a connection that has not been woken: as
// net.TCPConn.Read (it waits for input in the poller, under the read
// deadline), with a raw read(2) (rawRead: no sysmon wake-up per packet).
func (c *wakeConn) readNow(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	rc, err := c.TCPConn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var errno syscall.Errno
	if err := rc.Read(func(fd uintptr) bool {
		for {
			n, errno = rawRead(fd, p)
			if errno != syscall.EINTR {
				return errno != syscall.EAGAIN || c.nowait // else wait in the poller
			}
		}
	}); err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			oe.Op = "read" // as TCPConn.Read reports it ("raw-read")
		}
		return 0, err // deadline, closed
	}
	switch {
	case errno == syscall.EAGAIN:
		return 0, errWouldBlock // nowait
	case errno != 0:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", errno)}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// writeNow writes what the socket takes without waiting (rawWrite).
func (c *wakeConn) writeNow(p []byte) (int, error) {
	rc, err := c.TCPConn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var errno syscall.Errno
	if err := rc.Write(func(fd uintptr) bool {
		for {
			n, errno = rawWrite(fd, p)
			if errno != syscall.EINTR {
				return true // one attempt: waiting is the caller's
			}
		}
	}); err != nil {
		return 0, err
	}
	if errno == syscall.EAGAIN {
		return 0, nil
	}
	if errno != 0 {
		return 0, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("write", errno)}
	}
	return n, nil
}
