package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
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
	srv *hookServer

	mu        sync.Mutex
	disc      [][]arrival
	conn      [][]arrival
	discTotal int // the driver's (reason client)
	notClient int // DeviceDisconnected with another reason than the client's DISCONNECT
	connTotal int
	posts     int
	lastSeq   []string // per device, the highest sequence number delivered
	reordered int      // events delivered after a later one of their device (or twice)
	bad       int      // POSTs refused: a body that is not a batch of events, or a request not HTTP/1.1 can frame
	unknown   int      // events of devices not in the fleet, or of another type
	validated int      // validation handshakes answered
}

// hookPath is the path the subscription's endpoint URL names.
const hookPath = "/hook"

func startReceiver(devices int) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{disc: make([][]arrival, devices), conn: make([][]arrival, devices), lastSeq: make([]string, devices)}
	r.url = "http://" + ln.Addr().String() + hookPath
	var evs []hookEvent // the connection goroutines take turns under mu
	r.srv = serveHook(ln, hookPath, func(req *hookRequest) hookAnswer {
		at := time.Now()
		r.mu.Lock()
		defer r.mu.Unlock()
		var err error
		if evs, err = scanBatch(req.Body, evs); err == nil && len(evs) == 0 {
			err = errors.New("empty batch")
		}
		if err != nil {
			r.bad++
			return hookAnswer{status: http.StatusBadRequest, body: []byte(err.Error() + "\n"), contentType: "text/plain; charset=utf-8"}
		}
		if string(req.AegEventType) == "SubscriptionValidation" {
			r.validated++
			b, _ := json.Marshal(map[string]string{"validationResponse": string(evs[0].validationCode)})
			return hookAnswer{status: http.StatusOK, body: b, contentType: "application/json"}
		}
		r.deliverLocked(evs, at)
		return hookAnswer{status: http.StatusOK}
	}, func(error) { r.mu.Lock(); r.bad++; r.mu.Unlock() })
	return r, nil
}

func (r *receiver) close() { _ = r.srv.close() }

// deliverLocked records one batch that arrived at at (r.mu held).
func (r *receiver) deliverLocked(evs []hookEvent, at time.Time) {
	r.posts++
	for i := range evs {
		e := &evs[i]
		d, ok := deviceIndex(e.deviceID)
		if !ok || d >= len(r.disc) {
			r.unknown++
			continue
		}
		// Sequence numbers are 64 hex digits: string order is event order.
		if seq := e.seq; string(seq) <= r.lastSeq[d] {
			r.reordered++
		} else {
			r.lastSeq[d] = string(seq)
		}
		a := arrival{at: at, eventTime: e.eventTime}
		switch string(e.eventType) {
		case hubclient.DeviceDisconnected:
			if string(e.reason) != "client" {
				// Not one of the driver's closes (each sends DISCONNECT): a
				// connect it gave up on that the hub had accepted, or a
				// takeover of one. Counted, not paired.
				r.notClient++
				continue
			}
			r.disc[d] = append(r.disc[d], a)
			r.discTotal++
		case hubclient.DeviceConnected:
			r.conn[d] = append(r.conn[d], a)
			r.connTotal++
		default:
			r.unknown++
		}
	}
}

// deviceIndex is i of a device id lat-<i> (decimal, no sign).
func deviceIndex(id []byte) (int, bool) {
	s, ok := bytes.CutPrefix(id, []byte(devicePrefix))
	if !ok || len(s) == 0 || len(s) > 9 {
		return 0, false
	}
	i := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		i = i*10 + int(c-'0')
	}
	return i, true
}

// refused is how many POSTs the receiver refused (bad body or framing)
// and how many events named no device of the fleet.
func (r *receiver) refused() (bad, unknown int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad, r.unknown
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
