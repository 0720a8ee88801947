package e2e

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
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
	srv *http.Server

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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{url: "http://" + ln.Addr().String() + "/hook", up: true, refusedIDs: map[string]bool{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	t.Cleanup(func() { _ = r.srv.Close() })
	return r
}

func (r *receiver) setUp(up bool) {
	r.mu.Lock()
	r.up = up
	r.mu.Unlock()
}

// wireEvent is the part of an Event Grid event the receiver keeps.
type wireEvent struct {
	ID        string `json:"id"`
	EventType string `json:"eventType"`
	EventTime string `json:"eventTime"`
	Data      struct {
		DeviceID string `json:"deviceId"`
		Info     struct {
			SequenceNumber string `json:"sequenceNumber"`
		} `json:"deviceConnectionStateEventInfo"`
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
	if err == nil && len(batch) == 0 {
		err = errors.New("empty batch")
	}
	if err != nil {
		r.mu.Lock()
		r.badBodies++
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if req.Header.Get("aeg-event-type") == "SubscriptionValidation" {
		r.mu.Lock()
		r.validations++
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"validationResponse": batch[0].Data.ValidationCode})
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	if !r.up {
		r.rejected++
		for _, e := range batch {
			r.refusedIDs[e.ID] = true
		}
		http.Error(w, "receiver down", http.StatusServiceUnavailable)
		return
	}
	dc := req.Header.Get("aeg-delivery-count")
	for _, e := range batch {
		et, _ := time.Parse(time.RFC3339Nano, e.EventTime)
		r.got = append(r.got, delivered{
			ID: e.ID, Type: e.EventType, Device: e.Data.DeviceID, Seq: e.Data.Info.SequenceNumber,
			EventTime: et, At: at, DeliveryCount: dc,
		})
	}
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
