//go:build unix && !linux

package broker

import (
	"errors"
	"syscall"
)

// rawRead and rawWrite: the ordinary system calls here (see the Linux
// version for why Linux uses raw ones).
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	return errnoResult(n, err)
}

func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	return errnoResult(n, err)
}

func errnoResult(n int, err error) (int, syscall.Errno) {
	var e syscall.Errno
	if errors.As(err, &e) {
		return 0, e
	}
	if err != nil {
		return 0, syscall.EIO
	}
	return n, 0
}
