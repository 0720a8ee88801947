package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-hub/tether/internal/hubclient"
	"github.com/tether-hub/tether/internal/mqttclient"
	"github.com/tether-hub/tether/internal/sas"
)

// device is one simulated device: a raw MQTT 3.1.1 client over plain TCP
// (clean session 0, keep-alive 60 s) that remembers, per hub generation,
// how many sessions the hub acknowledged (CONNACK 0).
type device struct {
	id, key, key2 string
	src           *net.TCPAddr
	connect       []byte // the CONNECT packet, built once

	mu       sync.Mutex
	conn     net.Conn
	gen      int32  // hub generation of conn (1 before the kill, 2 after)
	sessions [3]int // CONNACK 0 received, by hub generation 1 and 2
	refused  [3]int // CONNACK ≠ 0, by generation
	lastRC   byte   // last non-zero CONNACK return code
	// unanswered counts CONNECTs sent without a CONNACK read back (a
	// timeout, a reset): the hub may or may not have recorded a session.
	unanswered int
}

func randomKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// newDevices makes n devices with random keys, source addresses spread
// over 127.0.0.2–127.0.0.20, and CONNECT packets signed for 24 h.
func newDevices(hubName, prefix string, n int) ([]*device, error) {
	devs := make([]*device, n)
	for i := range devs {
		id := fmt.Sprintf("%s-%04d", prefix, i)
		d := &device{id: id, key: randomKey(), key2: randomKey(),
			src: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%19))}}
		tok, err := sas.Sign(sas.DeviceResource(hubName, id), d.key, "", time.Now().Add(24*time.Hour))
		if err != nil {
			return nil, err
		}
		user := hubName + "/" + id + "/?api-version=" + apiVersion + "&DeviceClientType=tether-e2e%2F1.0"
		d.connect = mqttclient.ConnectPacket(id, user, tok, 60, false)
		devs[i] = d
	}
	return devs, nil
}

var errRefused = errors.New("CONNACK refused")

// connectOnce dials addr, sends CONNECT and reads CONNACK within 5 s. gen
// is the hub generation the dial started in.
func (d *device) connectOnce(addr string, gen int32) error {
	dl := net.Dialer{Timeout: 5 * time.Second, LocalAddr: d.src, Control: mqttclient.BindNoPort}
	c, err := dl.Dial("tcp", addr)
	if err != nil {
		return err
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(d.connect); err != nil {
		c.Close()
		d.countUnanswered()
		return err
	}
	_, err = mqttclient.ReadConnack(c)
	var rc mqttclient.ConnackError
	if err != nil && !errors.As(err, &rc) {
		c.Close()
		d.countUnanswered()
		return err
	}
	_ = c.SetDeadline(time.Time{})
	d.mu.Lock()
	defer d.mu.Unlock()
	if rc != 0 {
		d.refused[gen]++
		d.lastRC = byte(rc)
		c.Close()
		return fmt.Errorf("%w: return code %d", errRefused, rc)
	}
	d.conn, d.gen = c, gen
	d.sessions[gen]++
	return nil
}

func (d *device) countUnanswered() {
	d.mu.Lock()
	d.unanswered++
	d.mu.Unlock()
}

// dial connects, retrying (hub down, restarting or busy) until it works
// or ctx ends.
func (d *device) dial(ctx context.Context, addr string, gen *atomic.Int32) error {
	delay := 50 * time.Millisecond
	for {
		err := d.connectOnce(addr, gen.Load())
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", d.id, ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}

// drop ends the current connection, if any: with a DISCONNECT packet when
// graceful, else by closing the socket (the hub sees the TCP close).
func (d *device) drop(graceful bool) {
	d.mu.Lock()
	c := d.conn
	d.conn = nil
	d.mu.Unlock()
	if c == nil {
		return
	}
	if graceful {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Write([]byte{0xE0, 0})
	}
	_ = c.Close()
}

func (d *device) connGen() int32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		return 0
	}
	return d.gen
}

// forEach runs f over devs with par workers; done counts finished calls.
// The first error stops handing out more work and is returned.
func forEach(ctx context.Context, devs []*device, par int, done *atomic.Int64, f func(i int, d *device) error) error {
	var progress func(int)
	if done != nil {
		progress = func(int) { done.Add(1) }
	}
	return hubclient.ForEach(ctx, len(devs), par, func(i int) error { return f(i, devs[i]) }, progress)
}
