package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/alert"
	"github.com/tether-hub/tether/internal/journal"
)

// webhook records when each condition of each alert arrived.
type webhook struct {
	mu  sync.Mutex
	got map[string]time.Time // condition → first arrival since reset
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	at := time.Now()
	var p alert.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.got[p.Data.Essentials.MonitorCondition]; !ok {
		w.got[p.Data.Essentials.MonitorCondition] = at
	}
}

func (w *webhook) reset() {
	w.mu.Lock()
	w.got = map[string]time.Time{}
	w.mu.Unlock()
}

func (w *webhook) wait(ctx context.Context, cond string, d time.Duration) (time.Time, error) {
	deadline := time.Now().Add(d)
	for {
		w.mu.Lock()
		at, ok := w.got[cond]
		w.mu.Unlock()
		if ok {
			return at, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no %s within %s", cond, d)
		}
		if err := sleep(ctx, 2*time.Millisecond); err != nil {
			return time.Time{}, err
		}
	}
}

type latencyResult struct {
	crossToFired, dropToFired, backToResolved []time.Duration
}

// latencyRun: 100 devices, rule connectedDeviceCount < 90; each trial
// drops 20 and brings them back.
func latencyRun(ctx context.Context, c config) (latencyResult, error) {
	var res latencyResult
	wh := &webhook{}
	wh.reset()
	srv := httptest.NewServer(wh)
	defer srv.Close()
	rules := fmt.Sprintf(`
actionGroups:
  - name: bench
    actions: [{webhook: {url: %q}}]
rules:
  - name: low
    severity: 2
    metric: {name: connectedDeviceCount, aggregation: Average}
    operator: LessThan
    threshold: 90
    frequency: 1s
    window: 1s
    autoResolve: {after: 1}
    rateLimit: {count: 1000, per: 1h}
    actionGroups: [bench]
`, srv.URL)
	h, err := startHub(ctx, rules)
	if err != nil {
		return res, err
	}
	defer h.stop()

	// The 11th disconnect journalled in a trial is the crossing.
	var mu sync.Mutex
	var disconnects int
	var crossing time.Time
	sub, err := h.Journal().NC.Subscribe(journal.ConnPrefix+"*.disconnected", func(*nats.Msg) {
		mu.Lock()
		disconnects++
		if disconnects == 11 {
			crossing = time.Now()
		}
		mu.Unlock()
	})
	if err != nil {
		return res, err
	}
	defer sub.Unsubscribe()

	names := ids("lat", 100)
	clients, err := h.connect(ctx, names)
	if err != nil {
		return res, err
	}
	defer func() {
		for _, cl := range clients {
			cl.Disconnect(0)
		}
	}()
	// With no device connected at start the rule fired; wait until it
	// resolved with all 100 in.
	if err := waitInactive(ctx, h); err != nil {
		return res, err
	}
	for trial := range c.trials {
		// A random phase against the 1 s evaluation grid.
		if err := sleep(ctx, time.Duration(rand.IntN(1000))*time.Millisecond); err != nil {
			return res, err
		}
		wh.reset()
		mu.Lock()
		disconnects, crossing = 0, time.Time{}
		mu.Unlock()
		drop := time.Now()
		for _, cl := range clients[:20] {
			cl.Disconnect(0)
		}
		fired, err := wh.wait(ctx, "Fired", 10*time.Second)
		if err != nil {
			return res, fmt.Errorf("trial %d: %w", trial, err)
		}
		mu.Lock()
		cross := crossing
		mu.Unlock()
		res.dropToFired = append(res.dropToFired, fired.Sub(drop))
		res.crossToFired = append(res.crossToFired, fired.Sub(cross))
		back := time.Now()
		again, err := h.connect(ctx, names[:20])
		if err != nil {
			return res, err
		}
		copy(clients, again)
		resolved, err := wh.wait(ctx, "Resolved", 15*time.Second)
		if err != nil {
			return res, fmt.Errorf("trial %d: %w", trial, err)
		}
		res.backToResolved = append(res.backToResolved, resolved.Sub(back))
		log.Printf("trial %2d: crossing → Fired %4d ms, drop → Fired %4d ms, reconnect → Resolved %4d ms", trial+1,
			res.crossToFired[trial].Milliseconds(), res.dropToFired[trial].Milliseconds(), res.backToResolved[trial].Milliseconds())
		if err := waitInactive(ctx, h); err != nil {
			return res, err
		}
	}
	return res, nil
}

func waitInactive(ctx context.Context, h *benchHub) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		rs := h.Alerts().Rules()
		if len(rs) == 1 && rs[0].State == alert.Inactive && rs[0].LastEvaluated != nil {
			for _, in := range rs[0].Alerts {
				if in.Value != nil && *in.Value == 100 {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the rule did not settle: %+v", rs)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}
