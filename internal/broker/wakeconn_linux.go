package broker

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// receiveQueue is how many bytes the socket holds unread.
func receiveQueue(fd uintptr) int {
	n, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	if err != nil {
		return 1 << 16
	}
	return n
}

// waitReadable waits until the socket has input (or is closed, or its read
// deadline passes), without reading it, through the runtime's poller:
// shallow on the stack (idlepark.go).
func (c *wakeConn) waitReadable() {
	rc, err := c.TCPConn.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Read(readable)
}

// readable peeks at the socket without waiting: false (wait) only when
// it has nothing to read. A raw syscall: it never blocks.
func readable(fd uintptr) bool {
	var b [1]byte
	_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return e != syscall.EAGAIN
}
