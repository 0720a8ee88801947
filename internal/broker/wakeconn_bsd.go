//go:build unix && !linux

package broker

// receiveQueue cannot ask the socket here: the drain reads up to one
// receive buffer's worth.
func receiveQueue(uintptr) int { return 1 << 16 }

// waitReadable does not wait here: the reader parks in its read.
func (c *wakeConn) waitReadable() {}
