//go:build !unix

package broker

// drain cannot read without waiting here: a woken connection ends with
// what its reader had already read.
func (c *wakeConn) drain([]byte) (int, error) { return 0, errWoken }

// writeNow leaves every write to the blocking path here.
func (c *wakeConn) writeNow([]byte) (int, error) { return 0, nil }

// readNow is TCPConn.Read here.
func (c *wakeConn) readNow(p []byte) (int, error) { return c.TCPConn.Read(p) }

// waitReadable does not wait here: the reader parks in its read.
func (c *wakeConn) waitReadable() {}
