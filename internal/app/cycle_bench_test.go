package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/mqttclient"
)

// BenchmarkReconnectCycle is issue 21's unit of work through the whole
// hub: a device sends DISCONNECT and closes, then connects again, and
// both connection events are journalled, counted, logged and delivered
// to a webhook subscription (Event Grid schema, maxEventsPerBatch 1). One
// op is one cycle; 16 cycles in flight over 500 devices on plain TCP. The
// timer and CPU stop once the receiver has every event and the log
// writer's consumer has acknowledged every message. cpu-µs/op is this
// process's CPU: the hub plus the clients and the receiver (their share
// is the same before and after a change to the hub, so differences are
// the hub's).
//
//	go test -run X -bench ReconnectCycle -benchtime 5000x -count 3 ./internal/app/
func BenchmarkReconnectCycle(b *testing.B) {
	const devices, par = 500, 16
	h := startHubWith(b, b.TempDir(), nil)
	var delivered atomic.Int64
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var batch []struct {
			Data struct {
				ValidationCode string `json:"validationCode"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.Header.Get("aeg-event-type") == "SubscriptionValidation" {
			_ = json.NewEncoder(w).Encode(map[string]string{"validationResponse": batch[0].Data.ValidationCode})
			return
		}
		delivered.Add(int64(len(batch)))
	}))
	defer rc.Close()
	if status, body := h.api("POST", "/api/v1/subscriptions", map[string]any{
		"name":        "bench",
		"destination": map[string]any{"endpointType": "WebHook", "properties": map[string]any{"endpointUrl": rc.URL}},
		"filter":      map[string]any{"includedEventTypes": []string{"Microsoft.Devices.DeviceConnected", "Microsoft.Devices.DeviceDisconnected"}},
	}); status != 201 {
		b.Fatalf("subscription: %d %s", status, body)
	}

	connects := make([][]byte, devices)
	conns := make([]net.Conn, devices)
	locks := make([]sync.Mutex, devices)
	dial := func(i int) (net.Conn, error) {
		c, err := net.Dial("tcp", h.TCPAddr())
		if err != nil {
			return nil, err
		}
		if _, err := c.Write(connects[i]); err == nil {
			_, err = mqttclient.ReadConnack(c)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	for i := range devices {
		id := fmt.Sprintf("cycle-%03d", i)
		connects[i] = mqttclient.ConnectPacket(id, username(id), h.token(id, h.device(id), time.Hour), 60, false)
		c, err := dial(i)
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = c
	}
	// settled waits until every event so far is delivered and logged.
	settled := func(events int64) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for ctx.Err() == nil {
			if delivered.Load() >= events {
				cons, err := h.Journal().JS.Consumer(ctx, journal.StreamConn, "connlog")
				if err == nil {
					if info, err := cons.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
						return
					}
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.Fatalf("not settled: %d of %d events delivered", delivered.Load(), events)
	}
	settled(devices)
	cpu0 := processCPU()
	b.ResetTimer()
	var wg sync.WaitGroup
	next := make(chan int)
	for range par {
		wg.Go(func() {
			for k := range next {
				i := k % devices
				locks[i].Lock()
				_, _ = conns[i].Write([]byte{0xE0, 0})
				_ = conns[i].Close()
				c, err := dial(i)
				conns[i] = c
				locks[i].Unlock()
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	for k := range b.N {
		next <- k
	}
	close(next)
	wg.Wait()
	settled(int64(devices + 2*b.N))
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}
