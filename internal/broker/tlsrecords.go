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
	r, w     int32
	err      error // a read error that came with bytes, for the next Read
	// The current record as handed up: hn bytes of its header (in hdr)
	// and, once hn is 5, left bytes of its body still to come.
	left int32
	hn   uint8
	hdr  [5]byte
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
		c.r, c.w, c.err = 0, int32(n), err
	}
	in := c.buf[c.r:c.w]
	// Up to the end of the current record: whole records in one Read when
	// they are here, as tls would get them from the socket (its buffer
	// stays the size it was); a header split across reads as it comes.
	limit := int(c.left)
	if c.hn < 5 {
		need := 5 - int(c.hn)
		limit = need
		if len(in) >= need {
			var h [5]byte
			copy(h[copy(h[:], c.hdr[:c.hn]):], in[:need])
			limit += int(h[3])<<8 | int(h[4])
		}
	}
	n := copy(p[:min(len(p), limit)], in)
	c.track(in[:n])
	if c.r += int32(n); c.r == c.w {
		c.release()
	}
	return n, nil
}

// track follows the record framing over b, the bytes just handed up.
func (c *recordConn) track(b []byte) {
	if c.hn < 5 {
		k := copy(c.hdr[c.hn:], b)
		b = b[k:]
		if c.hn += uint8(k); c.hn == 5 {
			c.left = int32(c.hdr[3])<<8 | int32(c.hdr[4])
		}
	}
	if c.hn == 5 {
		c.left -= int32(len(b))
		if c.left == 0 {
			c.hn = 0 // the record is whole: the next header follows
		}
	}
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
