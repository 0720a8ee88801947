package sim

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tether-hub/tether/internal/hubclient"
)

// observed is one connection event as the simulator's webhook got it.
type observed struct {
	Device    int32
	Kind      Kind
	Result    string
	Reason    string
	Seq       string
	ID        string
	Renewal   bool
	Arrived   int64 // unix ns, receiver clock
	EventTime int64 // unix ns, hub clock
}

// Observer is the simulator's Event Grid webhook endpoint: it keeps the
// connection events of the run's devices (<prefix>-<n>) in arrival order.
type Observer struct {
	prefix string
	rx     *hubclient.Receiver

	mu      sync.Mutex
	events  []observed
	posts   int
	foreign int // events of devices that are not the run's
	bad     int
	lat     []time.Duration // arrival − eventTime of the last events, for the live view
}

// StartObserver listens on addr (default 127.0.0.1:0).
func StartObserver(addr, prefix string) (*Observer, error) {
	o := &Observer{prefix: prefix + "-"}
	o.rx = &hubclient.Receiver{Deliver: o.deliver, BadBody: func(error) { o.mu.Lock(); o.bad++; o.mu.Unlock() }}
	if err := o.rx.Start(addr); err != nil {
		return nil, err
	}
	return o, nil
}

// URL is the webhook endpoint to subscribe.
func (o *Observer) URL() string { return o.rx.URL }

// Close stops the receiver.
func (o *Observer) Close() error { return o.rx.Close() }

// deviceIndex parses <prefix>-<n>.
func deviceIndex(prefix, id string) (int32, bool) {
	s, ok := strings.CutPrefix(id, prefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, false
	}
	return int32(n), true
}

func (o *Observer) deliver(b hubclient.Batch) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.posts++
	for _, e := range b.Events {
		dev, ok := deviceIndex(o.prefix, e.Data.DeviceID)
		if !ok {
			o.foreign++
			continue
		}
		k := KindConnected
		switch e.EventType {
		case hubclient.DeviceConnected:
		case hubclient.DeviceDisconnected:
			k = KindDisconnected
		default:
			o.foreign++
			continue
		}
		o.events = append(o.events, observed{
			Device: dev, Kind: k, Result: e.Data.Tether.ResultType, Reason: e.Data.Tether.Reason,
			Seq: e.Data.Info.SequenceNumber, ID: e.ID, Renewal: e.Data.Tether.TokenRenewal,
			Arrived: b.At.UnixNano(), EventTime: e.EventTime.UnixNano(),
		})
		if len(o.lat) >= 4096 {
			o.lat = o.lat[:0]
		}
		o.lat = append(o.lat, b.At.Sub(e.EventTime))
	}
	return http.StatusOK
}

// Count is how many events of the run's devices arrived.
func (o *Observer) Count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.events)
}

// Events returns what arrived so far, in arrival order.
func (o *Observer) Events() []observed {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]observed(nil), o.events...)
}

// liveLatency returns p50 and p99 of arrival − eventTime over the recent
// events (hub and simulator clocks: meaningful on one machine).
func (o *Observer) liveLatency() (p50, p99 time.Duration, n int) {
	o.mu.Lock()
	l := append([]time.Duration(nil), o.lat...)
	o.mu.Unlock()
	if len(l) == 0 {
		return 0, 0, 0
	}
	slices.Sort(l)
	return l[len(l)/2], l[len(l)*99/100], len(l)
}
