package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tether-hub/tether/internal/hubclient"
)

// arrival is one delivered connection event.
type arrival struct {
	at        time.Time // receiver clock, once the body was read
	eventTime time.Time // the event's eventTime (hub clock; same machine)
}

// receiver is the webhook endpoint: it answers the validation handshake
// and records, per device, the arrival of each DeviceConnected and
// DeviceDisconnected in arrival order.
type receiver struct {
	url string
	rx  *hubclient.Receiver

	mu        sync.Mutex
	disc      [][]arrival
	conn      [][]arrival
	discTotal int // the driver's (reason client)
	notClient int // DeviceDisconnected with another reason than the client's DISCONNECT
	connTotal int
	posts     int
	lastSeq   []string // per device, the highest sequence number delivered
	reordered int      // events delivered after a later one of their device (or twice)
	bad       int
	unknown   int // events of devices not in the fleet
}

func startReceiver(devices int) (*receiver, error) {
	r := &receiver{disc: make([][]arrival, devices), conn: make([][]arrival, devices), lastSeq: make([]string, devices)}
	r.rx = &hubclient.Receiver{Deliver: r.deliver,
		BadBody: func(error) { r.mu.Lock(); r.bad++; r.mu.Unlock() }}
	if err := r.rx.Start(""); err != nil {
		return nil, err
	}
	r.url = r.rx.URL
	return r, nil
}

func (r *receiver) close() { _ = r.rx.Close() }

func (r *receiver) deliver(b hubclient.Batch) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	for _, e := range b.Events {
		i, ok := deviceIndex(e.Data.DeviceID)
		if !ok || i >= len(r.disc) {
			r.unknown++
			continue
		}
		// Sequence numbers are 64 hex digits: string order is event order.
		if seq := e.Data.Info.SequenceNumber; seq <= r.lastSeq[i] {
			r.reordered++
		} else {
			r.lastSeq[i] = seq
		}
		a := arrival{at: b.At, eventTime: e.EventTime}
		switch e.EventType {
		case hubclient.DeviceDisconnected:
			if e.Data.Tether.Reason != "client" {
				// Not one of the driver's closes (each sends DISCONNECT): a
				// connect it gave up on that the hub had accepted, or a
				// takeover of one. Counted, not paired.
				r.notClient++
				continue
			}
			r.disc[i] = append(r.disc[i], a)
			r.discTotal++
		case hubclient.DeviceConnected:
			r.conn[i] = append(r.conn[i], a)
			r.connTotal++
		default:
			r.unknown++
		}
	}
	return http.StatusOK
}

func deviceIndex(id string) (int, bool) {
	s, ok := strings.CutPrefix(id, devicePrefix)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	return i, err == nil && i >= 0
}

func (r *receiver) connectedTotal() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.connTotal
}

func (r *receiver) totals() (conn, disc, posts int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.connTotal, r.discTotal, r.posts
}

// waitConnected waits until n DeviceConnected arrived, at most d.
func (r *receiver) waitConnected(ctx context.Context, n int, d time.Duration) bool {
	return waitUntil(ctx, d, func() bool { return r.connectedTotal() >= n })
}

func waitUntil(ctx context.Context, d time.Duration, f func() bool) bool {
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
