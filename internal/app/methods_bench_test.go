package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/mqttclient"
	"github.com/tether-hub/tether/internal/sas"
)

// benchDevices connects n devices over plain TCP, each subscribed to
// filter, and runs onPublish for what the hub sends each of them.
func benchDevices(b *testing.B, h *hub, n int, prefix, filter string, onPublish func(c *mqttclient.Conn, topic string, payload []byte)) []*mqttclient.Conn {
	conns := make([]*mqttclient.Conn, n)
	for i := range conns {
		id := fmt.Sprintf("%s-%04d", prefix, i)
		key := h.device(id)
		d := mqttclient.Dialer{Addr: h.TCPAddr(), Timeout: 10 * time.Second}
		c, err := d.Dial(context.Background(), mqttclient.ConnectPacket(id, username(id), h.token(id, key, time.Hour), 60, false))
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Subscribe(filter, 0); err != nil {
			b.Fatal(err)
		}
		go func() {
			_ = c.ReadLoop(mqttclient.Handler{Publish: func(topic string, payload []byte) { onPublish(c, topic, payload) }})
		}()
		conns[i] = c
		b.Cleanup(func() { c.Close() })
	}
	time.Sleep(200 * time.Millisecond) // the SUBACKs
	return conns
}

// BenchmarkMethodRoundTrip is issue 11's method target: direct methods at
// 1,000 calls/s spread over 1,000 connected devices, through the whole
// hub (HTTPS API, broker, device answer), each call timed from request to
// response; target p99 ≤ 5 ms on loopback. Devices answer at once. The
// devices and the caller run in the benchmark's process, beside the hub.
//
//	go test -run X -bench MethodRoundTrip -benchtime 10000x ./internal/app/
func BenchmarkMethodRoundTrip(b *testing.B) {
	const devices, rate = 1000, 1000
	h := startHubWith(b, b.TempDir(), nil)
	benchDevices(b, h, devices, "m", "$iothub/methods/POST/#", func(c *mqttclient.Conn, topic string, payload []byte) {
		rid := topic[strings.LastIndex(topic, "$rid=")+5:]
		_, _ = c.Publish("$iothub/methods/res/200/?$rid="+rid, 0, payload)
	})
	cs, _ := sas.ParseConnectionString(h.OwnerConnectionString())
	tok, _ := sas.Sign("localhost", cs.SharedAccessKey, cs.SharedAccessKeyName, time.Now().Add(time.Hour))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: h.tlsConfig(), MaxIdleConnsPerHost: 256}}
	call := func(i int) (time.Duration, error) {
		body := []byte(`{"methodName":"ping","payload":{"n":` + fmt.Sprint(i) + `},"responseTimeoutInSeconds":10}`)
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("https://%s/twins/m-%04d/methods?api-version=2021-04-12", h.HTTPSAddr(), i%devices), bytes.NewReader(body))
		req.Header.Set("Authorization", tok)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if resp.StatusCode != 200 || !bytes.Contains(out, []byte(`"status":200`)) {
			return 0, fmt.Errorf("%d %s", resp.StatusCode, out)
		}
		return took, nil
	}
	for i := range 200 { // warm the connection pool
		if _, err := call(i); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	cpu0 := processCPU()
	b.ResetTimer()
	t := time.NewTicker(time.Second / rate)
	defer t.Stop()
	for i := range b.N {
		<-t.C
		wg.Go(func() {
			d, err := call(i)
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
			lat[i] = d
		})
	}
	wg.Wait()
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/call")
}

// BenchmarkTwinReportedPatch: devices patch their reported properties
// (each waiting for the 204 before the next, 8 devices' patches in flight
// per connection group), through the whole hub with the store write; one
// op is one acknowledged patch. BenchmarkTwinGet the same for GETs.
//
//	go test -run X -bench 'Twin(ReportedPatch|Get)' -benchtime 20000x ./internal/app/
func BenchmarkTwinReportedPatch(b *testing.B) {
	benchTwinRequests(b, "$iothub/twin/PATCH/properties/reported/?$rid=", `{"temp":21.5,"fw":"1.2.3"}`, "$iothub/twin/res/204/")
}

func BenchmarkTwinGet(b *testing.B) {
	benchTwinRequests(b, "$iothub/twin/GET/?$rid=", " ", "$iothub/twin/res/200/")
}

func benchTwinRequests(b *testing.B, topic, payload, wantPrefix string) {
	const devices = 64
	h := startHubWith(b, b.TempDir(), nil)
	answers := make(map[*mqttclient.Conn]chan string, devices)
	var amu sync.Mutex
	conns := benchDevices(b, h, devices, "t", "$iothub/twin/res/#", func(c *mqttclient.Conn, topic string, _ []byte) {
		amu.Lock()
		ch := answers[c]
		amu.Unlock()
		ch <- topic
	})
	for _, c := range conns {
		answers[c] = make(chan string, 1)
	}
	cpu0 := processCPU()
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, c := range conns {
		n := b.N / devices
		if i == 0 {
			n += b.N % devices
		}
		wg.Go(func() {
			amu.Lock()
			ch := answers[c]
			amu.Unlock()
			for j := range n {
				if _, err := c.Publish(topic+fmt.Sprint(j), 0, []byte(payload)); err != nil {
					b.Error(err)
					return
				}
				if got := <-ch; !strings.HasPrefix(got, wantPrefix) {
					b.Errorf("answer %s", got)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}
