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
	"syscall"
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
	// Backlog events (Devices taking turns) are journalled, unpaced, while
	// no engine runs (after the subscription's consumer exists); then an
	// engine starts and catches up. With Backlog, Rate and Duration may be
	// zero (no paced events after it).
	Backlog int
}

// Result of a run.
type Result struct {
	Sent, Received int
	// Latency percentiles and maximum over received events.
	P50, P90, P99, Max time.Duration
	// Elapsed from the first publish (with a Backlog: from the engine's
	// start) to the last receipt.
	Elapsed time.Duration
	// CPU is the process's CPU time (hub side, receiver and journal
	// server: all in this process) over Elapsed.
	CPU time.Duration
}

func (r Result) String() string {
	return fmt.Sprintf("sent %d, received %d in %v (CPU %v): p50 %v, p90 %v, p99 %v, max %v",
		r.Sent, r.Received, r.Elapsed.Round(time.Millisecond), r.CPU.Round(time.Millisecond), r.P50.Round(10*time.Microsecond),
		r.P90.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond))
}

// Run publishes cfg.Rate events per second for cfg.Duration and waits (up
// to 30 s more, and 1 ms per backlog event) until the endpoint has
// received them all.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if (cfg.Rate <= 0 || cfg.Duration <= 0) && cfg.Backlog <= 0 {
		return Result{}, fmt.Errorf("deliverybench: rate and duration, or a backlog, are required")
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
	paced := 0
	if cfg.Rate > 0 {
		paced = int(int64(cfg.Rate) * int64(cfg.Duration) / int64(time.Second))
	}
	total := cfg.Backlog + paced
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
	seqs := make([]int, cfg.Devices)
	n := 0
	publish := func(pub *journal.Publisher) error {
		dev := n % cfg.Devices
		n++
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
		return pub.Publish(journal.ConnectionEventMsg(ce))
	}
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

	if cfg.Backlog > 0 {
		// The journal fills while no engine runs; a new one catches up.
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := eng.Stop(sctx)
		cancel()
		if err != nil {
			return Result{}, err
		}
		bpub := journal.NewPublisher(j.JS, 1<<16, log)
		for range cfg.Backlog {
			if err := publish(bpub); err != nil {
				return Result{}, err
			}
		}
		if err := bpub.Close(ctx); err != nil { // every message stored
			return Result{}, err
		}
		if eng, err = delivery.New(o); err != nil {
			return Result{}, err
		}
	}
	pub := journal.NewPublisher(j.JS, 1<<16, log)
	cpu0 := processCPU()
	start := time.Now()
	if cfg.Backlog > 0 {
		if err := eng.Start(ctx); err != nil {
			return Result{}, err
		}
	}
	for i := 0; i < paced; i++ {
		if d := time.Until(start.Add(time.Duration(i) * (time.Second / time.Duration(cfg.Rate)))); d > 0 {
			time.Sleep(d) // pacing the publisher, not waiting for a condition
		}
		if err := publish(pub); err != nil {
			return Result{}, err
		}
	}
	res := Result{Sent: total}
	select {
	case <-done:
	case <-time.After(30*time.Second + time.Duration(cfg.Backlog)*time.Millisecond):
	case <-ctx.Done():
	}
	res.CPU = processCPU() - cpu0
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

// processCPU is this process's user + system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
