package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-hub/tether/internal/hubclient"
)

// The service side: a back end calling direct methods on the fleet and
// changing desired properties, at --method-rate and --desired-rate, over
// the hub's REST API as the owner policy (what azure-iothub's
// Client.invokeDeviceMethod and Registry.updateTwin send). Each call and
// update carries a number and its target ({"n":…,"dev":…}), so the check
// can tell an answer or push that reached the wrong device or the wrong
// call. A --method-offline fraction of the calls go to registered devices
// that never connect (404103), a --method-no-answer fraction call a method
// the devices have no handler for (504101).

// CallRecord is one direct method call as the driver made it.
type CallRecord struct {
	Dev       int32  `json:"d"` // fleet index; -1: a never-connecting device
	ID        string `json:"id"`
	N         int64  `json:"n"`
	Method    string `json:"m"`
	T0        int64  `json:"t0"` // request sent (unix ns)
	T1        int64  `json:"t1"` // answer read
	Status    int    `json:"s"`  // HTTP status; 0: no answer (Err)
	Number    int    `json:"e,omitempty"`
	DevStatus int    `json:"ds,omitempty"` // the device's status in a 200 answer
	Bad       string `json:"b,omitempty"`  // a 200 whose payload is not this call's echo
	Err       string `json:"err,omitempty"`
}

// DesiredRecord is one desired-property update as the driver made it.
type DesiredRecord struct {
	Dev     int32  `json:"d"`
	N       int64  `json:"n"`
	T0      int64  `json:"t0"`
	T1      int64  `json:"t1"`
	Version int64  `json:"v"` // desired $version after the update; 0 if it failed
	Status  int    `json:"s"`
	Err     string `json:"err,omitempty"`
}

// Bounds of the driver.
const (
	// driverInFlight caps calls and updates waiting for answers; past it
	// the driver skips (and counts) rather than queue.
	driverInFlight = 2048
	// perDeviceInFlight keeps the driver under the hub's 16 calls in
	// flight per device (a 429 would only measure the driver).
	perDeviceInFlight = 8
	// driverSlack is added to a request's own timeout for the HTTP call.
	driverSlack = 15 * time.Second
)

// driver runs the service side of a run.
type driver struct {
	api     *hubclient.Client
	cfg     *Config
	offline []string // registered devices that never connect

	sem     chan struct{}
	wg      sync.WaitGroup
	n       atomic.Int64
	skipped atomic.Int64
	// Live counters.
	invoked, answered, desiredSent, desiredDone atomic.Int64

	mu       sync.Mutex
	calls    []CallRecord
	updates  []DesiredRecord
	inflight map[int32]int
}

func newDriver(api *hubclient.Client, cfg *Config, offline []string) *driver {
	// The client's own timeout (60 s) would cut calls with long response
	// timeouts; each request here has its own deadline instead.
	c := *api
	c.HTTP = &http.Client{Transport: api.HTTP.Transport}
	return &driver{api: &c, cfg: cfg, offline: offline, sem: make(chan struct{}, driverInFlight), inflight: map[int32]int{}}
}

// OfflineIDs are the never-connecting devices the offline calls go to.
func OfflineIDs(c *Config) []string {
	if c.MethodRate <= 0 || c.MethodOffline <= 0 {
		return nil
	}
	n := min(max(1, c.Devices/100), 100)
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-offline-%d", c.Prefix, i)
	}
	return out
}

// run paces calls and updates from begin until ctx ends, then waits for
// those in flight.
func (dr *driver) run(ctx context.Context, begin time.Time) {
	var loops sync.WaitGroup
	pace := func(rate float64, seed uint64, issue func(r *rand.Rand)) {
		if rate <= 0 {
			return
		}
		loops.Add(1)
		go func() {
			defer loops.Done()
			r := rand.New(rand.NewPCG(dr.cfg.Seed, seed))
			paceLoop(ctx, begin, rate, func() { issue(r) })
		}()
	}
	pace(dr.cfg.MethodRate, 1<<40, dr.invoke)
	pace(dr.cfg.DesiredRate, 1<<41, dr.update)
	loops.Wait()
	dr.wg.Wait()
}

// paceLoop calls issue rate times a second from begin until ctx ends,
// catching up after a slow tick rather than drifting.
func paceLoop(ctx context.Context, begin time.Time, rate float64, issue func()) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Until(begin)):
	}
	tick := time.Duration(float64(time.Second) / rate)
	tick = min(max(tick, 5*time.Millisecond), 100*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	var done int64
	for {
		due := int64(time.Since(begin).Seconds() * rate)
		for ; done < due; done++ {
			if ctx.Err() != nil {
				return
			}
			issue()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// acquire takes an in-flight slot for device dev (or any, dev < 0).
func (dr *driver) acquire(dev int32) bool {
	select {
	case dr.sem <- struct{}{}:
	default:
		return false
	}
	if dev >= 0 {
		dr.mu.Lock()
		if dr.inflight[dev] >= perDeviceInFlight {
			dr.mu.Unlock()
			<-dr.sem
			return false
		}
		dr.inflight[dev]++
		dr.mu.Unlock()
	}
	return true
}

func (dr *driver) release(dev int32) {
	if dev >= 0 {
		dr.mu.Lock()
		if dr.inflight[dev]--; dr.inflight[dev] <= 0 {
			delete(dr.inflight, dev)
		}
		dr.mu.Unlock()
	}
	<-dr.sem
}

// invoke makes one direct method call.
func (dr *driver) invoke(r *rand.Rand) {
	c := dr.cfg
	rec := CallRecord{Dev: -1, Method: methodEcho}
	x := r.Float64()
	switch {
	case x < c.MethodOffline && len(dr.offline) > 0:
		rec.ID = dr.offline[r.IntN(len(dr.offline))]
	default:
		if x < c.MethodOffline+c.MethodNoAnswer {
			rec.Method = methodUnhandled
		}
		rec.Dev = int32(r.IntN(c.Devices))
		rec.ID = c.DeviceID(int(rec.Dev))
	}
	if !dr.acquire(rec.Dev) {
		dr.skipped.Add(1)
		return
	}
	rec.N = dr.n.Add(1)
	dr.invoked.Add(1)
	dr.wg.Add(1)
	go func() {
		defer dr.wg.Done()
		defer dr.release(rec.Dev)
		payload, _ := json.Marshal(methodPayload{N: rec.N, Dev: rec.ID})
		ctx, cancel := context.WithTimeout(context.Background(), c.MethodTimeout+driverSlack)
		defer cancel()
		rec.T0 = time.Now().UnixNano()
		res, err := dr.api.InvokeMethod(ctx, rec.ID, hubclient.MethodCall{Name: rec.Method, Payload: payload, ResponseTimeout: c.MethodTimeout})
		rec.T1 = time.Now().UnixNano()
		var he *hubclient.HubError
		switch {
		case errors.As(err, &he):
			rec.Status, rec.Number = he.Status, he.Number
		case err != nil:
			rec.Err = requestErrKind(err)
		default:
			rec.Status, rec.DevStatus = 200, res.Status
			rec.Bad = checkEcho(res.Payload, rec)
			dr.answered.Add(1)
		}
		dr.mu.Lock()
		dr.calls = append(dr.calls, rec)
		dr.mu.Unlock()
	}()
}

// checkEcho says what is wrong with a device's answer to rec, or "".
func checkEcho(payload json.RawMessage, rec CallRecord) string {
	var a struct {
		Echo methodPayload `json:"echo"`
		Dev  string        `json:"dev"`
	}
	if err := json.Unmarshal(payload, &a); err != nil {
		return fmt.Sprintf("answer is not an echo: %.80s", payload)
	}
	if a.Echo.N != rec.N || a.Echo.Dev != rec.ID || a.Dev != rec.ID {
		return fmt.Sprintf("call %d to %s answered with %.120s", rec.N, rec.ID, payload)
	}
	return ""
}

// update makes one desired-property update.
func (dr *driver) update(r *rand.Rand) {
	c := dr.cfg
	rec := DesiredRecord{Dev: int32(r.IntN(c.Devices))}
	if !dr.acquire(-1) {
		dr.skipped.Add(1)
		return
	}
	rec.N = dr.n.Add(1)
	dr.desiredSent.Add(1)
	id := c.DeviceID(int(rec.Dev))
	dr.wg.Add(1)
	go func() {
		defer dr.wg.Done()
		defer dr.release(-1)
		patch := map[string]any{"properties": map[string]any{"desired": map[string]any{
			"sim": methodPayload{N: rec.N, Dev: id}}}}
		ctx, cancel := context.WithTimeout(context.Background(), driverSlack)
		defer cancel()
		rec.T0 = time.Now().UnixNano()
		tw, err := dr.api.UpdateTwin(ctx, id, patch, "")
		rec.T1 = time.Now().UnixNano()
		var he *hubclient.HubError
		switch {
		case errors.As(err, &he):
			rec.Status = he.Status
		case err != nil:
			rec.Err = requestErrKind(err)
		default:
			rec.Status, rec.Version = 200, tw.DesiredVersion()
			dr.desiredDone.Add(1)
		}
		dr.mu.Lock()
		dr.updates = append(dr.updates, rec)
		dr.mu.Unlock()
	}()
}

// requestErrKind shortens a transport error for the report: the cause,
// without the URL.
func requestErrKind(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// records returns what the driver did.
func (dr *driver) records() ([]CallRecord, []DesiredRecord) {
	dr.mu.Lock()
	defer dr.mu.Unlock()
	return append([]CallRecord(nil), dr.calls...), append([]DesiredRecord(nil), dr.updates...)
}
