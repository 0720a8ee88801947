package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/app"
)

// BenchmarkClusterConnect compares, in one run, a single hub with a
// 3-node cluster in this process: devices connect one after another
// (TLS, paho), spread round-robin over the nodes, each staying connected.
// It reports the CONNACK latency, the process's CPU per connect (hubs,
// NATS servers and TLS clients: in the cluster the three nodes' share of
// each connect together) and the event latency, from the dial to its
// DeviceConnected event at a webhook (one node delivers the cluster's).
//
//	go test -run '^$' -bench ClusterConnect -benchtime 300x ./internal/app/
func BenchmarkClusterConnect(b *testing.B) {
	b.Run("single", func(b *testing.B) {
		// Unthrottled, as the cluster's nodes (startCluster).
		h := startHubWith(b, b.TempDir(), func(c *app.Config) { c.NoThrottle = true })
		benchConnects(b, []*hub{h})
	})
	b.Run("cluster-3", func(b *testing.B) {
		benchConnects(b, startCluster(b))
	})
}

// arrivals records when each device's DeviceConnected reached the webhook.
type arrivals struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (a *arrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	body, _ := io.ReadAll(r.Body)
	var batch []struct {
		EventType string `json:"eventType"`
		Data      struct {
			DeviceID       string `json:"deviceId"`
			ValidationCode string `json:"validationCode"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &batch); err != nil || len(batch) == 0 {
		http.Error(w, "bad batch", 400)
		return
	}
	if r.Header.Get("aeg-event-type") == "SubscriptionValidation" {
		_ = json.NewEncoder(w).Encode(map[string]any{"validationResponse": batch[0].Data.ValidationCode})
		return
	}
	a.mu.Lock()
	for _, e := range batch {
		if _, seen := a.at[e.Data.DeviceID]; !seen && e.EventType == "Microsoft.Devices.DeviceConnected" {
			a.at[e.Data.DeviceID] = now
		}
	}
	a.mu.Unlock()
}

func (a *arrivals) get(id string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.at[id]
	return t, ok
}

func benchConnects(b *testing.B, hubs []*hub) {
	rc := &arrivals{at: map[string]time.Time{}}
	srv := httptest.NewServer(rc)
	b.Cleanup(srv.Close)
	status, body := hubs[0].api("POST", "/api/v1/subscriptions", map[string]any{
		"name":        "bench",
		"destination": map[string]any{"endpointType": "WebHook", "properties": map[string]any{"endpointUrl": srv.URL}},
		"filter":      map[string]any{"includedEventTypes": []string{"Microsoft.Devices.DeviceConnected"}},
	})
	if status != 201 {
		b.Fatalf("subscription: %d %s", status, body)
	}
	// Warm-up: the delivering node's engine has the subscription's
	// consumer and delivers before anything is timed.
	warm := fmt.Sprintf("warm-%d", len(hubs))
	wkey := hubs[0].device(warm)
	waitDevice(b, hubs, warm)
	last := hubs[len(hubs)-1]
	last.v3(warm, username(warm), last.token(warm, wkey, time.Hour))
	eventually(b, 60*time.Second, func() error {
		if _, ok := rc.get(warm); !ok {
			return fmt.Errorf("the webhook has no DeviceConnected of %s yet", warm)
		}
		return nil
	})
	ids := make([]string, b.N)
	keys := make([]string, b.N)
	for i := range b.N {
		ids[i] = fmt.Sprintf("bench-%d-%d", len(hubs), i)
		keys[i] = hubs[0].device(ids[i])
	}
	waitDevice(b, hubs, ids[b.N-1])
	dialed := make([]time.Time, b.N)
	lat := make([]time.Duration, 0, b.N)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		h := hubs[i%len(hubs)]
		dialed[i] = time.Now()
		if _, rc := h.v3(ids[i], username(ids[i]), h.token(ids[i], keys[i], time.Hour)); rc != 0 {
			b.Fatalf("connect %d: %d", i, rc)
		}
		lat = append(lat, time.Since(dialed[i]))
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	var ev []time.Duration
	eventually(b, 60*time.Second, func() error {
		ev = ev[:0]
		for i, id := range ids {
			at, ok := rc.get(id)
			if !ok {
				return fmt.Errorf("the webhook has no DeviceConnected of %s yet", id)
			}
			ev = append(ev, at.Sub(dialed[i]))
		}
		return nil
	})
	pct := func(d []time.Duration, p int) float64 {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return float64(d[min(len(d)*p/100, len(d)-1)].Microseconds()) / 1000
	}
	b.ReportMetric(pct(lat, 50), "connack-p50-ms")
	b.ReportMetric(pct(lat, 99), "connack-p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/connect")
	b.ReportMetric(pct(ev, 50), "event-p50-ms")
	b.ReportMetric(pct(ev, 99), "event-p99-ms")
}
