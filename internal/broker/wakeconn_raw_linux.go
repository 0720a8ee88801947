package broker

import (
	"syscall"
	"unsafe"
)

// rawRead and rawWrite are one read(2) or write(2) on a non-blocking
// socket without the runtime's syscall bookkeeping. syscall.Read and Write
// enter the scheduler's syscall state, and when every P was idle (an idle
// hub between two PINGREQs) that wakes sysmon, which then polls every
// 20 µs until the process is idle again: on a hub holding 10,000 idle
// connections, each PINGREQ's read and PINGRESP's write woke it (futex
// wake, sysmon's nanosleeps). The socket never blocks, so nothing needs
// sysmon's watch.
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	return rawIO(syscall.SYS_READ, fd, p)
}

func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	return rawIO(syscall.SYS_WRITE, fd, p)
}

func rawIO(trap, fd uintptr, p []byte) (int, syscall.Errno) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, e := syscall.RawSyscall(trap, fd, uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}
