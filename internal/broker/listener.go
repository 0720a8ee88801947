package broker

import (
	"crypto/tls"
	"errors"
	"net"
	"time"
)

// accept serves one MQTT listener (TLS when tlsConf is set) until it is
// closed. Each connection's connect phase runs on a connector goroutine
// (connectors.go), free again once the session is established
// (session.serve).
func (b *Broker) accept(ln net.Listener, tlsConf *tls.Config) {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || b.table.stopping.Load() {
				return
			}
			// Out of file descriptors and the like: back off, keep serving.
			delay = min(max(delay*2, 5*time.Millisecond), time.Second)
			b.log.Warn("mqtt accept failed", "listener", ln.Addr().String(), "err", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		tc, ok := c.(*net.TCPConn)
		if !ok {
			_ = c.Close()
			continue
		}
		var wait time.Duration
		if tlsConf != nil && b.opts.Throttle != nil {
			if wait, ok = b.admitAccepted(c); !ok {
				continue
			}
		}
		s := b.newTCPSession(tc, c.RemoteAddr().String())
		b.connectors.run(connectJob{s: s, tlsConf: tlsConf, wait: wait})
	}
}
