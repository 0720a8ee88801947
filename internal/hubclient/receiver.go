package hubclient

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// Event is the part of an Event Grid event that tools check.
type Event struct {
	ID        string    `json:"id"`
	EventType string    `json:"eventType"`
	Subject   string    `json:"subject"`
	EventTime time.Time `json:"eventTime"`
	Data      struct {
		DeviceID string `json:"deviceId"`
		Info     struct {
			SequenceNumber string `json:"sequenceNumber"`
		} `json:"deviceConnectionStateEventInfo"`
		ValidationCode string `json:"validationCode"`
		Tether         struct {
			Reason       string `json:"reason"`
			ResultType   string `json:"resultType"`
			TokenRenewal bool   `json:"tokenRenewal"`
		} `json:"tether"`
	} `json:"data"`
}

// Batch is one delivery POST.
type Batch struct {
	Events []Event
	At     time.Time // when its body was read (the receiver's clock)
	Header http.Header
}

// Receiver is an Event Grid webhook endpoint on 127.0.0.1. It answers the
// SubscriptionValidation handshake itself and hands every other batch to
// Deliver, whose return value is the HTTP status answered (200 accepts;
// 503 makes Event Grid retry).
type Receiver struct {
	URL     string // set by Start
	Deliver func(Batch) int
	// BadBody, if set, counts bodies that are not a JSON array of events.
	BadBody     func(error)
	Validations func()

	srv *http.Server
}

// Start listens on addr (default 127.0.0.1:0), sets URL and serves until
// Close. Set the callbacks before.
func (r *Receiver) Start(addr string) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	r.URL = "http://" + ln.Addr().String() + "/hook"
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return nil
}

// Close stops serving.
func (r *Receiver) Close() error { return r.srv.Close() }

func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<20))
	at := time.Now()
	var batch []Event
	if err == nil {
		err = json.Unmarshal(body, &batch)
	}
	if err == nil && len(batch) == 0 {
		err = errors.New("empty batch")
	}
	if err != nil {
		if r.BadBody != nil {
			r.BadBody(err)
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if req.Header.Get("aeg-event-type") == "SubscriptionValidation" {
		if r.Validations != nil {
			r.Validations()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"validationResponse": batch[0].Data.ValidationCode})
		return
	}
	code := http.StatusOK
	if r.Deliver != nil {
		code = r.Deliver(Batch{Events: batch, At: at, Header: req.Header})
	}
	if code >= 300 {
		http.Error(w, http.StatusText(code), code)
		return
	}
	w.WriteHeader(code)
}
