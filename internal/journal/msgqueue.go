package journal

import "sync"

// msgQueue is the publisher's queue: messages in FIFO order, in chunks
// that exist only while they hold something, bounded by a capacity. It
// replaces a `chan Msg` of that capacity, whose buffer (65,536 × 104 B =
// 6.5 MB of pointer slots in the hub) is one object the collector scans
// whole at every cycle however little it holds; a queue of a few
// messages here is one chunk.
//
// Any number of goroutines push; one pops (the publisher's run loop).
type msgQueue struct {
	mu         sync.Mutex
	head, tail *msgChunk
	spare      *msgChunk // one emptied chunk kept, so a steady flow allocates none
	n, limit   int
	closed     bool
	// ready has a token while the queue may hold something (or is
	// closed): the popper waits on it. room has one while a full queue
	// may have space again: pushers wait on it.
	ready, room chan struct{}
}

// chunkLen messages per chunk (~13 KB).
const chunkLen = 128

type msgChunk struct {
	msgs       [chunkLen]Msg
	read, used int // msgs[read:used] are queued
	next       *msgChunk
}

func newMsgQueue(limit int) *msgQueue {
	return &msgQueue{limit: max(limit, 1), ready: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// push appends m, waiting while the queue is full. It returns ErrClosed
// once the queue is closed or abort is.
func (q *msgQueue) push(m Msg, abort <-chan struct{}) error {
	q.mu.Lock()
	for q.n >= q.limit && !q.closed {
		q.mu.Unlock()
		select {
		case <-q.room:
		case <-abort:
			return ErrClosed
		}
		q.mu.Lock()
	}
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if q.tail == nil || q.tail.used == chunkLen {
		c := q.spare
		q.spare = nil
		if c == nil {
			c = new(msgChunk)
		}
		if q.tail == nil {
			q.head = c
		} else {
			q.tail.next = c
		}
		q.tail = c
	}
	q.tail.msgs[q.tail.used] = m
	q.tail.used++
	q.n++
	more := q.n < q.limit
	q.mu.Unlock()
	signal(q.ready)
	if more {
		// Another pusher may be waiting for the room this one took its
		// token for.
		signal(q.room)
	}
	return nil
}

// pop takes the oldest message without waiting. ok is false when there is
// none; closed then says whether none will come.
func (q *msgQueue) pop() (m Msg, ok, closed bool) {
	q.mu.Lock()
	c := q.head
	if c == nil || c.read == c.used {
		closed = q.closed
		q.mu.Unlock()
		return Msg{}, false, closed
	}
	m = c.msgs[c.read]
	c.msgs[c.read] = Msg{} // let the collector have what it referenced
	c.read++
	q.n--
	if c.read == chunkLen {
		q.head = c.next
		if q.head == nil {
			q.tail = nil
		}
		c.read, c.used, c.next = 0, 0, nil
		q.spare = c
	} else if c.read == c.used && c.next == nil {
		// Empty: start the chunk over rather than leave a tail of used
		// slots.
		c.read, c.used = 0, 0
	}
	wasFull := q.n == q.limit-1
	q.mu.Unlock()
	if wasFull {
		signal(q.room)
	}
	return m, true, false
}

// close refuses further pushes; what is queued can still be popped.
func (q *msgQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	signal(q.ready)
	signal(q.room)
}

func (q *msgQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}
