package broker

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// reader reads MQTT packets without holding a large buffer while the
// connection is idle: a blocked read fills a 16-byte array; once traffic
// flows, a chunk from a pool takes what follows, and goes back to the pool
// as soon as everything in it has been handled.
type reader struct {
	src   io.Reader
	small [16]byte
	buf   []byte // small[:] or a pooled chunk
	r, w  int    // unread input is buf[r:w]
	max   int32  // largest remaining length accepted
	got   bool   // a byte has been read
	short bool   // the last read returned less than it had room for
	last  byte   // the first byte of the last packet returned by next
}

func (rd *reader) init(src io.Reader, maxRemaining int) {
	rd.src, rd.max = src, int32(maxRemaining)
	rd.buf = rd.small[:]
}

// errTooLarge is wrapped by next for a packet over the size limit.
var errTooLarge = errors.New("packet too large")

// errMalformedLength: the remaining length is not a valid variable byte
// integer.
var errMalformedLength = errors.New("malformed remaining length")

// next returns the next packet's first byte and body. The body is valid
// until the following call.
func (rd *reader) next() (header byte, body []byte, err error) {
	rd.releaseChunk()
	if err := rd.fill(2); err != nil {
		return 0, nil, err
	}
	// Remaining length: up to four bytes, seven bits each.
	length, shift, i := 0, 0, 1
	for {
		if err := rd.fill(i + 1); err != nil {
			return 0, nil, err
		}
		b := rd.buf[rd.r+i]
		length |= int(b&0x7f) << shift
		i++
		if b&0x80 == 0 {
			break
		}
		if shift += 7; shift > 21 {
			return 0, nil, errMalformedLength
		}
	}
	if length > int(rd.max) {
		return 0, nil, rd.tooLarge(length)
	}
	if err := rd.fill(i + length); err != nil {
		return 0, nil, err
	}
	header = rd.buf[rd.r]
	rd.last = header
	body = rd.buf[rd.r+i : rd.r+i+length]
	rd.r += i + length
	return header, body, nil
}

// tooLarge is next's error for a packet of length over the limit, out of
// line: formatting it takes a frame the idle reader's stack need not hold
// (session.run).
//
//go:noinline
func (rd *reader) tooLarge(length int) error {
	return fmt.Errorf("%w: %d bytes; the limit is %d", errTooLarge, length, rd.max)
}

// fill makes n unread bytes available in buf[r:], reading as needed. The
// buffer grows as bytes arrive (at most doubling), never to a length a
// packet only announces: a client that claims a large packet and stalls
// holds one chunk, not the claim.
func (rd *reader) fill(n int) error {
	for rd.w-rd.r < n {
		if rd.w == len(rd.buf) && len(rd.buf)-rd.r < n {
			rd.grow(min(n, max(2*(rd.w-rd.r), chunkSizes[0])))
		} else if rd.w == len(rd.buf) {
			rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
			rd.r = 0
		}
		m, err := rd.src.Read(rd.buf[rd.w:])
		rd.short = m < len(rd.buf)-rd.w
		rd.w += m
		rd.got = rd.got || m > 0
		if err != nil {
			if rd.w-rd.r >= n {
				return nil
			}
			if errors.Is(err, io.EOF) && rd.w > rd.r {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// grow moves the unread bytes into a pooled chunk with room for n.
func (rd *reader) grow(n int) {
	old := rd.buf
	rd.buf = getChunk(n)
	rd.w = copy(rd.buf, old[rd.r:rd.w])
	rd.r = 0
	if !rd.isSmall(old) {
		putChunk(old)
	}
}

func (rd *reader) isSmall(b []byte) bool { return &b[0] == &rd.small[0] }

// releaseChunk hands a pooled chunk back once nothing in it is unread.
func (rd *reader) releaseChunk() {
	if rd.r == rd.w && !rd.isSmall(rd.buf) {
		putChunk(rd.buf)
		rd.buf, rd.r, rd.w = rd.small[:], 0, 0
	}
}

// Chunk sizes: 4 KiB for ordinary traffic, powers of four above it for
// large messages (IoT Hub allows 256 KiB).
var chunkSizes = [...]int{4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20}

var chunkPools [len(chunkSizes)]sync.Pool

func getChunk(n int) []byte {
	for i, size := range chunkSizes {
		if n <= size {
			if p, ok := chunkPools[i].Get().(*[]byte); ok {
				return *p
			}
			return make([]byte, size)
		}
	}
	return make([]byte, n)
}

func putChunk(b []byte) {
	for i, size := range chunkSizes {
		if len(b) == size {
			chunkPools[i].Put(&b)
			return
		}
	}
}

// close returns a pooled chunk at the end of the connection.
func (rd *reader) close() {
	if !rd.isSmall(rd.buf) {
		putChunk(rd.buf)
	}
	rd.buf, rd.r, rd.w = rd.small[:], 0, 0
}

// peek returns the next byte without consuming it, reading if needed. It
// keeps a chunk the buffer holds (session.connect gives a plain
// connection's first read one).
func (rd *reader) peek() (byte, error) {
	if err := rd.fill(1); err != nil {
		return 0, err
	}
	return rd.buf[rd.r], nil
}
