package e2e

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/hubclient"
)

// delivered is one event as a webhook receiver got it.
type delivered struct {
	ID, Type, Device, Seq string
	EventTime             time.Time
	At                    time.Time // arrival (the receiver's clock)
	DeliveryCount         string    // aeg-delivery-count header of the POST
}

// receiver is an Event Grid webhook endpoint on 127.0.0.1. It answers the
// SubscriptionValidationEvent handshake with the validation code, and
// while down answers every delivery 503 (Event Grid retries those).
type receiver struct {
	url string

	mu          sync.Mutex
	up          bool
	got         []delivered
	posts       int
	rejected    int             // POSTs answered 503 while down
	refusedIDs  map[string]bool // ids of the events in those POSTs
	validations int
	badBodies   int
}

func startReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{up: true, refusedIDs: map[string]bool{}}
	rx := &hubclient.Receiver{Deliver: r.deliver,
		BadBody:     func(error) { r.mu.Lock(); r.badBodies++; r.mu.Unlock() },
		Validations: func() { r.mu.Lock(); r.validations++; r.mu.Unlock() }}
	if err := rx.Start(""); err != nil {
		t.Fatal(err)
	}
	r.url = rx.URL
	t.Cleanup(func() { _ = rx.Close() })
	return r
}

func (r *receiver) setUp(up bool) {
	r.mu.Lock()
	r.up = up
	r.mu.Unlock()
}

func (r *receiver) deliver(b hubclient.Batch) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	if !r.up {
		r.rejected++
		for _, e := range b.Events {
			r.refusedIDs[e.ID] = true
		}
		return http.StatusServiceUnavailable
	}
	dc := b.Header.Get("aeg-delivery-count")
	for _, e := range b.Events {
		r.got = append(r.got, delivered{
			ID: e.ID, Type: e.EventType, Device: e.Data.DeviceID, Seq: e.Data.Info.SequenceNumber,
			EventTime: e.EventTime, At: b.At, DeliveryCount: dc,
		})
	}
	return http.StatusOK
}

// snapshot returns what was received so far, in arrival order.
func (r *receiver) snapshot() []delivered {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivered(nil), r.got...)
}

func (r *receiver) counts() (posts, rejected, validations, bad int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.posts, r.rejected, r.validations, r.badBodies
}

// wasRefused reports whether an event with this id was in a POST the
// receiver answered 503.
func (r *receiver) wasRefused(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refusedIDs[id]
}
