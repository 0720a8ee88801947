package main

import (
	"crypto/tls"
	"math/rand/v2"
	"net"
	"time"
)

// A reconnect storm (-retry): every device retries until it is connected,
// as the Azure IoT Node SDK's default policy does (azure-iot-common
// ExponentialBackOffWithJitter, normal parameters; reference
// iothub-facts.md §7.2): the first retry at once, then
// min(100 ms + (2^(x−1) − 1) × rand[50 ms, 75 ms), 10 s) before retry x.
// A refusal by a throttle (a connection closed before its TLS handshake,
// CONNACK 3) is a network or "server unavailable" error to the SDK, so the
// same (not the throttling) parameters apply.

// nodeBackoff is the wait before retry x (1-based).
func nodeBackoff(x int) time.Duration {
	if x <= 1 {
		return 0
	}
	// c = 100 ms, jd = 0.5, ju = 0.25: the factor is rand[c·(1−jd), c·(1−ju)).
	const cMin, cMax = 100 * time.Millisecond, 10 * time.Second
	jitter := 50*time.Millisecond + rand.N(25*time.Millisecond)
	if x > 30 {
		return cMax
	}
	return min(cMin+time.Duration(1<<(x-1)-1)*jitter, cMax)
}

// connectRetrying connects one device, retrying until deadline; lat is
// from its first dial to its CONNACK.
func connectRetrying(c config, tcfg *tls.Config, src *net.TCPAddr, connect []byte, deadline time.Time) outcome {
	t0 := time.Now()
	o := outcome{fails: map[string]int{}}
	for x := 1; ; x++ {
		conn, err := connectOne(c, tcfg, src, connect)
		if err == nil {
			o.conn, o.lat, o.at = conn, time.Since(t0), time.Now()
			return o
		}
		wait := nodeBackoff(x)
		if time.Now().Add(wait).After(deadline) {
			o.err = err
			return o
		}
		o.fails[failureKind(err)]++
		time.Sleep(wait)
	}
}
