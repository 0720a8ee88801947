package broker

import (
	"crypto/tls"
	"sync/atomic"
	"time"
)

// connectors run the connect phase of accepted connections (session.serve)
// on goroutines that stay for the next connection instead of exiting. A
// new goroutine starts with a 2 KiB stack, and the SAS check (HMAC,
// base64) and the TLS handshake grow it by copying it several times: in a
// CPU profile of a plain connect storm, runtime.newstack under
// authenticate took ~5 % of the hub's CPU (~11 µs per connect). A worker
// handed the next connection keeps its grown stack. Idle workers wait
// without a timer (nothing wakes the idle hub); at most maxIdleConnectors
// wait, the rest exit, and the GC shrinks the stacks of those waiting.
// All exit when the broker stops.
type connectors struct {
	work    chan connectJob // unbuffered: a send succeeds only into a waiting worker
	idle    atomic.Int32
	stopped <-chan struct{}
}

// connectJob is one accepted connection's connect phase.
type connectJob struct {
	s       *session
	tlsConf *tls.Config
	wait    time.Duration
}

// maxIdleConnectors bounds the workers that wait for a connection: about
// the connects a storm keeps in flight (the bench's 200). The journal's
// acks finish connects in bunches, so many workers fall idle at once: with
// 32, half of the stack growth under authenticate was back. What waiting
// workers hold is small: 4,000 TLS connects left ~0.2 KiB of stack per
// connection more than without (bench/cmd/storm's Go memory table), and
// GCs shrink it further.
const maxIdleConnectors = 256

func newConnectors(stopped <-chan struct{}) *connectors {
	return &connectors{work: make(chan connectJob), stopped: stopped}
}

// run serves j on a waiting worker, or on a new one if none waits.
func (c *connectors) run(j connectJob) {
	select {
	case c.work <- j:
	default:
		go c.worker(j)
	}
}

func (c *connectors) worker(j connectJob) {
	for {
		j.s.serve(j.tlsConf, nil, j.wait)
		j = connectJob{} // hold no session while waiting
		if c.idle.Add(1) > maxIdleConnectors {
			c.idle.Add(-1)
			return
		}
		select {
		case j = <-c.work:
			c.idle.Add(-1)
		case <-c.stopped:
			c.idle.Add(-1)
			return
		}
	}
}
