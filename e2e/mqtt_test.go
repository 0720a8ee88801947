package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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
		d.connect = connectPacket(id, user, tok, 60, false)
		devs[i] = d
	}
	return devs, nil
}

// connectPacket encodes an MQTT 3.1.1 CONNECT with username and password.
func connectPacket(clientID, user, pass string, keepAlive uint16, clean bool) []byte {
	var vh []byte
	vh = appendString(vh, "MQTT")
	flags := byte(0x80 | 0x40)
	if clean {
		flags |= 0x02
	}
	vh = append(vh, 4, flags)
	vh = binary.BigEndian.AppendUint16(vh, keepAlive)
	vh = appendString(vh, clientID)
	vh = appendString(vh, user)
	vh = appendString(vh, pass)
	out := []byte{0x10}
	for n := len(vh); ; {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			break
		}
	}
	return append(out, vh...)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT so a bound source address does
// not reserve a port before connect (as bench/cmd/connstorm does).
func bindNoPort(_, _ string, rc syscall.RawConn) error {
	const ipBindAddressNoPort = 24 // linux/in.h
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	return errors.Join(err, serr)
}

var errRefused = errors.New("CONNACK refused")

// connectOnce dials addr, sends CONNECT and reads CONNACK within 5 s. gen
// is the hub generation the dial started in.
func (d *device) connectOnce(addr string, gen int32) error {
	dl := net.Dialer{Timeout: 5 * time.Second, LocalAddr: d.src, Control: bindNoPort}
	c, err := dl.Dial("tcp", addr)
	if err != nil {
		return err
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(d.connect); err != nil {
		c.Close()
		return err
	}
	var ack [4]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		c.Close()
		return err
	}
	if ack[0] != 0x20 || ack[1] != 2 {
		c.Close()
		return fmt.Errorf("not a CONNACK: % x", ack)
	}
	_ = c.SetDeadline(time.Time{})
	d.mu.Lock()
	defer d.mu.Unlock()
	if ack[3] != 0 {
		d.refused[gen]++
		d.lastRC = ack[3]
		c.Close()
		return fmt.Errorf("%w: return code %d", errRefused, ack[3])
	}
	d.conn, d.gen = c, gen
	d.sessions[gen]++
	return nil
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(devs) {
					return
				}
				if err := f(i, devs[i]); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
				if done != nil {
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}
