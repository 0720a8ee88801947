package broker

import "net"

// recordConn is the socket as crypto/tls reads it on an MQTT listener: it
// hands tls at most the rest of the current TLS record per Read, from
// what it read ahead of the socket. tls therefore never holds input past
// the record it is working on, and once a Read of the application data
// came back short (tls had no more plaintext) and this is at a record
// boundary with nothing read ahead, everything the device sent after is
// still in the socket. That is what lets an idle session's reader park
// on the socket itself, shallow, instead of inside crypto/tls (idlepark.go).
//
// The read-ahead buffer is a pooled chunk, held only while it has unread
// bytes, so the socket is read as often as before (many records per read
// when they come together).
type recordConn struct {
	net.Conn        // the wakeConn
	buf      []byte // read ahead: buf[r:w] unread; nil when empty
	r, w     int
	err      error   // a read error that came with bytes, for the next Read
	hdr      [5]byte // the next record's header as far as handed up
	hn       int     // header bytes handed up (5: in the body)
	left     int     // body bytes of the current record not handed up yet
}

func (c *recordConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.r == c.w {
		if err := c.err; err != nil {
			c.err = nil
			return 0, err
		}
		if c.buf == nil {
			c.buf = getChunk(chunkSizes[0])
		}
		n, err := c.Conn.Read(c.buf)
		if n <= 0 {
			c.release()
			return 0, err
		}
		c.r, c.w, c.err = 0, n, err
	}
	limit := c.left
	if c.hn < len(c.hdr) {
		limit = len(c.hdr) - c.hn
	}
	n := copy(p[:min(len(p), limit)], c.buf[c.r:c.w])
	if c.hn < len(c.hdr) {
		copy(c.hdr[c.hn:], c.buf[c.r:c.r+n])
		if c.hn += n; c.hn == len(c.hdr) {
			c.left = int(c.hdr[3])<<8 | int(c.hdr[4])
		}
	} else {
		c.left -= n
	}
	if c.hn == len(c.hdr) && c.left == 0 {
		c.hn = 0 // the record is whole: the next header follows
	}
	if c.r += n; c.r == c.w {
		c.release()
	}
	return n, nil
}

// release gives the read-ahead chunk back once it is empty (and at the
// end of the session).
func (c *recordConn) release() {
	if c.buf != nil {
		putChunk(c.buf)
	}
	c.buf, c.r, c.w = nil, 0, 0
}

// quiet reports that nothing is read ahead and tls has been handed whole
// records only.
func (c *recordConn) quiet() bool { return c.r == c.w && c.err == nil && c.hn == 0 }

// NetConn is the socket underneath (wakeConnOf).
func (c *recordConn) NetConn() net.Conn { return c.Conn }
