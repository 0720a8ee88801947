package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
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
	srv *http.Server

	mu        sync.Mutex
	disc      [][]arrival
	conn      [][]arrival
	discTotal int
	connTotal int
	posts     int
	bad       int
	unknown   int // events of devices not in the fleet
}

func startReceiver(devices int) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + ln.Addr().String() + "/hook",
		disc: make([][]arrival, devices), conn: make([][]arrival, devices)}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) close() { _ = r.srv.Close() }

type wireEvent struct {
	EventType string `json:"eventType"`
	EventTime string `json:"eventTime"`
	Data      struct {
		DeviceID       string `json:"deviceId"`
		ValidationCode string `json:"validationCode"`
	} `json:"data"`
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	at := time.Now()
	var batch []wireEvent
	if err == nil {
		err = json.Unmarshal(body, &batch)
	}
	if err != nil || len(batch) == 0 {
		r.mu.Lock()
		r.bad++
		r.mu.Unlock()
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	if req.Header.Get("aeg-event-type") == "SubscriptionValidation" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"validationResponse": batch[0].Data.ValidationCode})
		return
	}
	r.mu.Lock()
	r.posts++
	for _, e := range batch {
		i, ok := deviceIndex(e.Data.DeviceID)
		if !ok || i >= len(r.disc) {
			r.unknown++
			continue
		}
		et, _ := time.Parse(time.RFC3339Nano, e.EventTime)
		a := arrival{at: at, eventTime: et}
		switch e.EventType {
		case "Microsoft.Devices.DeviceDisconnected":
			r.disc[i] = append(r.disc[i], a)
			r.discTotal++
		case "Microsoft.Devices.DeviceConnected":
			r.conn[i] = append(r.conn[i], a)
			r.connTotal++
		default:
			r.unknown++
		}
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
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
