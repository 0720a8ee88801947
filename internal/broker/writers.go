package broker

import "sync"

// Outbound packets of an established session (acks, SUBACK, C2D) are
// queued on the session and written by a small pool of writer goroutines
// shared by all sessions. Sealing a TLS record (AES-GCM) needs a deeper
// stack than a session's reader keeps when it is handling a packet:
// written from the packet handler, every PINGRESP grew the reader's stack
// and the next GC shrank it again (a third of an idle hub's CPU in a
// 10,000-connection profile). The writers' stacks grow once and stay. The
// one exception is a PINGRESP, which the read loop writes itself when no
// writer has the session's bytes (pong, outbound.go). Each session's bytes
// go out in the order they were queued, as many per write as have queued
// meanwhile.

// writerCount bounds how many sessions are written at once; a device that
// does not read holds one writer for at most writeTimeout.
const writerCount = 16

type writerPool struct {
	mu    sync.Mutex
	queue []*session
	wake  chan struct{}
	quit  chan struct{}
	wg    sync.WaitGroup
}

func newWriterPool() *writerPool {
	w := &writerPool{wake: make(chan struct{}, writerCount), quit: make(chan struct{})}
	for range writerCount {
		w.wg.Add(1)
		go w.run()
	}
	return w
}

// schedule puts s on the queue; the caller has marked s queued.
func (w *writerPool) schedule(s *session) {
	w.mu.Lock()
	w.queue = append(w.queue, s)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // every writer has a wake-up pending already
	}
}

func (w *writerPool) run() {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		if len(w.queue) == 0 {
			w.queue = nil
			w.mu.Unlock()
			select {
			case <-w.wake:
				continue
			case <-w.quit:
				return
			}
		}
		s := w.queue[0]
		w.queue = w.queue[1:]
		w.mu.Unlock()
		s.flush()
	}
}

// stop ends the writers once nothing more will be queued.
func (w *writerPool) stop() {
	close(w.quit)
	w.wg.Wait()
}

// outbox is a session's queued outbound bytes.
type outbox struct {
	mu     sync.Mutex
	buf    []byte
	queued bool // on the writers' queue or being written
}

// send queues p (copied) for the device; it never blocks on the network.
func (s *session) send(p []byte) {
	o := &s.out
	o.mu.Lock()
	o.buf = append(o.buf, p...)
	start := !o.queued
	o.queued = true
	o.mu.Unlock()
	if start {
		s.b.writers.schedule(s)
	}
}

// flush writes what is queued until nothing is; it runs on a writer. An
// idle session keeps no buffer.
func (s *session) flush() {
	o := &s.out
	for {
		o.mu.Lock()
		b := o.buf
		o.buf = nil
		if len(b) == 0 {
			o.queued = false
			o.mu.Unlock()
			return
		}
		o.mu.Unlock()
		_ = s.write(b) // a failure ends the session; later writes fail at once
	}
}
