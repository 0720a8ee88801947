// Package deliverybench measures the delivery engine end to end: a
// connection event is journalled the way the hub does it (journal.Publisher
// on an embedded JetStream) and its webhook POST is received by an HTTP
// endpoint on 127.0.0.1; the latency of an event is the receiver's clock
// at the POST minus the event's time. It is a library so that bench/ and
// tests share it.
package deliverybench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/events/delivery"
	"github.com/tether-hub/tether/internal/events/memstore"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
)

// Config of one run.
type Config struct {
	// Rate is events per second, spread evenly; Duration how long to
	// publish; Devices how many devices take turns (each alternates
	// connect and disconnect).
	Rate     int
	Duration time.Duration
	Devices  int
	// MaxEventsPerBatch of the subscription; default 1 (Event Grid's).
	MaxEventsPerBatch int
	// ReceiverDelay is how long the endpoint takes to answer.
	ReceiverDelay time.Duration
	// DataDir for the journal; default a temporary directory, removed
	// afterwards.
	DataDir string
	// Engine options to override (JS, Store are set by Run).
	Options delivery.Options
}

// Result of a run.
type Result struct {
	Sent, Received int
	// Latency percentiles and maximum over received events.
	P50, P90, P99, Max time.Duration
	// Elapsed from the first publish to the last receipt.
	Elapsed time.Duration
}

func (r Result) String() string {
	return fmt.Sprintf("sent %d, received %d in %v: p50 %v, p90 %v, p99 %v, max %v",
		r.Sent, r.Received, r.Elapsed.Round(time.Millisecond), r.P50.Round(10*time.Microsecond),
		r.P90.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond))
}

// Run publishes cfg.Rate events per second for cfg.Duration and waits (up
// to 30 s more) until the endpoint has received them all.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Rate <= 0 || cfg.Duration <= 0 {
		return Result{}, fmt.Errorf("deliverybench: rate and duration are required")
	}
	if cfg.Devices <= 0 {
		cfg.Devices = 1000
	}
	if cfg.MaxEventsPerBatch <= 0 {
		cfg.MaxEventsPerBatch = 1
	}
	dir := cfg.DataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "deliverybench")
		if err != nil {
			return Result{}, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	j, err := journal.Open(ctx, journal.Options{DataDir: dir, Logger: log})
	if err != nil {
		return Result{}, err
	}
	defer j.Close()

	var (
		mu     sync.Mutex
		lats   []time.Duration
		last   time.Time
		closed bool
	)
	total := int(int64(cfg.Rate) * int64(cfg.Duration) / int64(time.Second))
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		var evs []struct {
			EventTime time.Time `json:"eventTime"`
		}
		_ = json.NewDecoder(r.Body).Decode(&evs)
		if cfg.ReceiverDelay > 0 {
			time.Sleep(cfg.ReceiverDelay)
		}
		mu.Lock()
		for _, e := range evs {
			lats = append(lats, now.Sub(e.EventTime))
		}
		last = now
		if len(lats) >= total && !closed {
			closed = true
			close(done)
		}
		mu.Unlock()
	}))
	defer srv.Close()

	store := memstore.New()
	o := cfg.Options
	o.JS, o.Store, o.Logger = j.JS, store, log
	o.ResyncInterval = -1
	eng, err := delivery.New(o)
	if err != nil {
		return Result{}, err
	}
	if err := eng.Start(ctx); err != nil {
		return Result{}, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Stop(sctx)
	}()
	sub := events.Subscription{Name: "bench", Destination: events.Destination{Properties: events.DestinationProperties{
		EndpointURL: srv.URL, MaxEventsPerBatch: cfg.MaxEventsPerBatch}}}
	sub.ApplyDefaults()
	sub.ProvisioningState = events.Succeeded
	if _, err := store.Create(ctx, sub); err != nil {
		return Result{}, err
	}
	if err := eng.Reload(ctx, sub.Name); err != nil {
		return Result{}, err
	}

	pub := journal.NewPublisher(j.JS, 1<<16, log)
	seqs := make([]int, cfg.Devices)
	start := time.Now()
	interval := time.Second / time.Duration(cfg.Rate)
	for i := 0; i < total; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d) // pacing the publisher, not waiting for a condition
		}
		dev := i % cfg.Devices
		seqs[dev]++
		kind := presence.Connected
		if seqs[dev]%2 == 0 {
			kind = presence.Disconnected
		}
		devID := fmt.Sprintf("bench-%05d", dev)
		seq := fmt.Sprintf("%064X", seqs[dev])
		ce := presence.ConnectionEvent{ID: devID + "/" + seq, Kind: kind, Time: time.Now(), Hub: "bench.azure-devices.net",
			DeviceID: devID, Sequence: seq, Protocol: "MQTT", ProtocolVersion: 4}
		if kind == presence.Disconnected {
			ce.Reason, ce.Result = presence.ReasonNetwork, presence.ResultClosedRemotely
		}
		if err := pub.Publish(journal.ConnectionEventMsg(ce)); err != nil {
			return Result{}, err
		}
	}
	res := Result{Sent: total}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	_ = pub.Close(ctx)
	mu.Lock()
	defer mu.Unlock()
	res.Received = len(lats)
	res.Elapsed = last.Sub(start)
	if len(lats) == 0 {
		return res, fmt.Errorf("deliverybench: nothing received")
	}
	s := slices.Clone(lats)
	slices.Sort(s)
	pct := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	res.P50, res.P90, res.P99, res.Max = pct(0.50), pct(0.90), pct(0.99), s[len(s)-1]
	if res.Received < res.Sent {
		return res, fmt.Errorf("deliverybench: %d of %d events received", res.Received, res.Sent)
	}
	return res, nil
}
