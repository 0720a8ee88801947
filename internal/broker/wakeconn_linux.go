package broker

import "golang.org/x/sys/unix"

// receiveQueue is how many bytes the socket holds unread.
func receiveQueue(fd uintptr) int {
	n, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	if err != nil {
		return 1 << 16
	}
	return n
}
