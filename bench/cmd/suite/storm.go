package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tether-hub/tether/bench/internal/procstat"
	"github.com/tether-hub/tether/bench/internal/stormrun"
	"github.com/tether-hub/tether/internal/hubclient"
)

// The reconnect storm (-storm-n): every device of a large fleet
// reconnects at the same moment (after a network outage or a hub restart)
// against a fresh Tether, once with throttling at -storm-rate and once
// with --no-throttle. The devices are connstorm -drive -retry processes
// (the hold test's machinery: ≤ -per-proc each, their own loopback
// source addresses), all dialling at once and retrying as the Azure IoT
// Node SDK does. Measured: the time until every device is connected
// against the time the configured rate implies, the hub's CPU each
// second, the registry API's latency while it lasts (GET /devices/{id}
// every 100 ms), connect timeouts (handshakes the hub spent CPU on in
// vain: 500008 records), and every refused attempt three ways — as the
// devices saw it, in the Connections log (KQL, 429001/429005) and in the
// throttledConnects metric.

// stormResult is one reconnect storm.
type stormResult struct {
	Throttled                       bool
	Rate                            float64 // --max-connect-rate (throttled)
	Burst                           int
	N, Procs                        int
	Connected, Failed               int
	Attempts                        int
	ClientFailures                  map[string]int // failed attempts, by kind, as the devices saw them
	TimeToAllS                      float64        // dial of all → last CONNACK
	ExpectedS                       float64        // (N − burst) / rate
	APIN, APIErrors                 int
	APIP50, APIP99                  float64 // ms
	APIMax                          float64
	HealthP50, HealthP99, HealthMax float64   // GET /api/v1/health, ms: the HTTPS server without the registry store
	CPUAvg, CPUPeak                 float64   // hub CPU in cores, each second of the storm
	CPUSeries                       []float64 // per second
	LogCounts                       map[string]int
	MetricThrottled                 map[string]float64 // scope → tether_throttled_connects_total
	LogCaughtUp                     bool
	ListenOverflows                 int64 // TcpExt ListenOverflows during the storm (machine-wide): connections the kernel dropped before the hub could accept them
	ConnectedSeries                 []int // connected devices at each second (from /metrics)
	HandshakesInFlight              []int // tether_tls_handshakes_in_progress each second
}

// stormRun runs one storm against a fresh Tether.
func (s *setup) stormRun(ctx context.Context, throttled bool) (*stormResult, error) {
	o := s.o
	r := &stormResult{Throttled: throttled, N: o.stormN, Rate: o.stormRate, Burst: int(o.stormRate)}
	args := []string{"--no-throttle"}
	label := "off"
	if throttled {
		label = "throttled"
		args = []string{"--max-connect-rate", strconv.FormatFloat(o.stormRate, 'f', -1, 64), "--connect-burst", strconv.Itoa(r.Burst)}
		args = append(args, o.stormArgs...)
		r.ExpectedS = float64(o.stormN-r.Burst) / o.stormRate
	}
	b, err := startTether(ctx, s, "tether", filepath.Join(s.logs, "tether-storm-"+label+".log"), args...)
	if err != nil {
		return nil, err
	}
	defer b.stop()
	if err := pinCPUs(b.pid, o.hubCPUs); err != nil {
		return nil, err
	}
	api, err := hubclient.FromDevDir(ctx, s.dataDir("tether"), "https://"+s.httpsAddr, 30*time.Second)
	if err != nil {
		return nil, err
	}
	k := (o.stormN + o.perProc - 1) / o.perProc
	r.Procs = k
	phaseCap := o.stormCap
	var ds []*driven
	defer func() {
		for _, d := range ds {
			_ = d.in.Close()
			stopCmd(d.cmd)
		}
	}()
	for p := range k {
		first, last := p*o.stormN/k, (p+1)*o.stormN/k
		d, err := s.startDriven(b, p, first, last-first, last-first, o.clientNice,
			"-retry", "-phase-cap", phaseCap.String(), "-conn-timeout", "60s", "-hold-max", (phaseCap + 3*time.Minute).String())
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
		if err := pinCPUs(d.cmd.Process.Pid, o.clientCPUs); err != nil {
			return nil, err
		}
	}
	if _, err := ask(ctx, ds, "", "ready", 60*time.Second); err != nil {
		return nil, err
	}
	procstat.WaitQuiet(b.pid, 250*time.Millisecond, 4, 0.05, 15*time.Second)
	log.Printf("storm (%s): %d devices from %d processes reconnect at once", label, o.stormN, k)

	sctx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var lats, health []time.Duration
	wg.Add(2)
	go func() { defer wg.Done(); lats, health, r.APIErrors = probeAPI(sctx, api) }()
	go func() { defer wg.Done(); s.sampleStorm(sctx, b, r) }()
	ov0, _ := procstat.ListenOverflows()
	t0 := time.Now()
	evs, err := ask(ctx, ds, "connect", "connected", phaseCap+90*time.Second)
	ov1, _ := procstat.ListenOverflows()
	r.ListenOverflows = ov1 - ov0
	stopSampling()
	wg.Wait()
	if err != nil {
		return nil, err
	}
	var last int64
	r.ClientFailures = map[string]int{}
	for _, e := range evs {
		res := e.Result
		r.Connected += res.Connected
		r.Failed += res.Failed + res.NotTried
		r.Attempts += res.Attempts
		last = max(last, res.LastConnack)
		for kind, n := range res.RetryFailures {
			r.ClientFailures[kind] += n
		}
		for kind, n := range res.Failures {
			r.ClientFailures["final "+kind] += n
		}
	}
	if last > 0 {
		r.TimeToAllS = time.UnixMilli(last).Sub(t0).Seconds()
	}
	slices.Sort(lats)
	r.APIN = len(lats)
	if len(lats) > 0 {
		r.APIP50, r.APIP99, r.APIMax = msOf(pctOf(lats, 50)), msOf(pctOf(lats, 99)), msOf(lats[len(lats)-1])
	}
	slices.Sort(health)
	if len(health) > 0 {
		r.HealthP50, r.HealthP99, r.HealthMax = msOf(pctOf(health, 50)), msOf(pctOf(health, 99)), msOf(health[len(health)-1])
	}
	for _, c := range r.CPUSeries {
		r.CPUAvg += c / float64(len(r.CPUSeries))
		r.CPUPeak = max(r.CPUPeak, c)
	}
	log.Printf("storm (%s): %d connected, %d failed in %.1fs (expected %.1fs), %d attempts; API p99 %.1f ms (max %.1f, %d errors); hub CPU avg %.2f peak %.2f cores",
		label, r.Connected, r.Failed, r.TimeToAllS, r.ExpectedS, r.Attempts, r.APIP99, r.APIMax, r.APIErrors, r.CPUAvg, r.CPUPeak)

	// The log and the metric, once the log writer has caught up.
	deadline := time.Now().Add(60 * time.Second)
	for {
		r.LogCounts, err = connectionCounts(ctx, api, t0.Add(-time.Second))
		if err != nil {
			return r, err
		}
		r.MetricThrottled = scrapeScopes(ctx, s.httpsAddr, "tether_throttled_connects_total")
		var m float64
		for _, v := range r.MetricThrottled {
			m += v
		}
		logged := r.LogCounts["deviceConnect 429001"] + r.LogCounts["deviceConnect 429005"]
		if r.LogCounts["deviceConnect Success"] >= r.Connected && float64(logged) == m {
			r.LogCaughtUp = true
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	log.Printf("storm (%s): log %v; metric throttledConnects %v (caught up %v); client failures %v", label, r.LogCounts, r.MetricThrottled, r.LogCaughtUp, r.ClientFailures)
	return r, nil
}

// probeAPI GETs a device from the registry API, then /api/v1/health,
// every 100 ms until ctx ends and returns their latencies and the number
// of errors.
func probeAPI(ctx context.Context, api *hubclient.Client) ([]time.Duration, []time.Duration, int) {
	var lats, health []time.Duration
	errs := 0
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return lats, health, errs
		case <-t.C:
		}
		for i, path := range []string{"/devices/" + stormrun.DeviceID(0) + "?api-version=" + stormrun.APIVersion, "/api/v1/health"} {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			t0 := time.Now()
			status, _, err := api.Do(rctx, http.MethodGet, path, nil)
			d := time.Since(t0)
			cancel()
			if ctx.Err() != nil {
				return lats, health, errs
			}
			if err != nil || status != http.StatusOK {
				errs++
				continue
			}
			if i == 0 {
				lats = append(lats, d)
			} else {
				health = append(health, d)
			}
		}
	}
}

// sampleStorm reads the hub's CPU, connected devices and handshakes in
// progress once a second until ctx ends.
func (s *setup) sampleStorm(ctx context.Context, b *broker, r *stormResult) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	prev, _ := procstat.CPU(b.pid)
	at := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c, err := procstat.CPU(b.pid)
		if err != nil {
			return
		}
		now := time.Now()
		r.CPUSeries = append(r.CPUSeries, (time.Duration(c-prev)*procstat.TickDuration).Seconds()/now.Sub(at).Seconds())
		prev, at = c, now
		g := scrapeGauges(ctx, s.httpsAddr, "tether_connected_devices", "tether_tls_handshakes_in_progress")
		r.ConnectedSeries = append(r.ConnectedSeries, int(g[0]))
		r.HandshakesInFlight = append(r.HandshakesInFlight, int(g[1]))
	}
}

// metricsClient reads /metrics (unauthenticated, the dev CA is not
// checked: the figures are read, not trusted).
var metricsClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

func readMetrics(ctx context.Context, httpsAddr string) []string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+httpsAddr+"/metrics", nil)
	resp, err := metricsClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines
}

func scrapeGauges(ctx context.Context, httpsAddr string, names ...string) []float64 {
	out := make([]float64, len(names))
	for _, l := range readMetrics(ctx, httpsAddr) {
		for i, n := range names {
			if v, ok := strings.CutPrefix(l, n+" "); ok {
				out[i], _ = strconv.ParseFloat(v, 64)
			}
		}
	}
	return out
}

// scrapeScopes is family{scope="…"} by scope.
func scrapeScopes(ctx context.Context, httpsAddr, family string) map[string]float64 {
	out := map[string]float64{}
	for _, l := range readMetrics(ctx, httpsAddr) {
		rest, ok := strings.CutPrefix(l, family+`{scope="`)
		if !ok {
			continue
		}
		scope, val, _ := strings.Cut(rest, `"} `)
		out[scope], _ = strconv.ParseFloat(val, 64)
	}
	return out
}

// connectionCounts counts the Connections records since t by operation
// and ResultType ("deviceConnect 429001", "deviceConnect Success"), with
// the hub's KQL API.
func connectionCounts(ctx context.Context, api *hubclient.Client, since time.Time) (map[string]int, error) {
	q := fmt.Sprintf(`AzureDiagnostics | where Category == "Connections" and TimeGenerated >= datetime(%s) | summarize n = count() by OperationName, ResultType`,
		since.UTC().Format(time.RFC3339Nano))
	var res struct {
		Tables []struct {
			Rows [][]any `json:"rows"`
		} `json:"tables"`
	}
	status, body, err := api.Do(ctx, http.MethodPost, "/api/v1/query", map[string]string{"query": q})
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("query: %d %s", status, body)
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, err
	}
	out := map[string]int{}
	if len(res.Tables) == 0 {
		return out, nil
	}
	for _, row := range res.Tables[0].Rows {
		if len(row) != 3 {
			continue
		}
		rt := fmt.Sprint(row[1])
		if rt == "" || rt == "<nil>" {
			rt = "Success"
		}
		n, _ := row[2].(float64)
		out[fmt.Sprint(row[0])+" "+rt] += int(n)
	}
	return out, nil
}

func pctOf(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(i, len(sorted))-1)]
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// pinCPUs binds every thread of process pid to the CPU list cpus (taskset
// syntax; "" leaves it alone). Threads the process starts later inherit
// the mask from the thread that starts them. Pinning the hub and the
// storm's clients to different cores shows what the hub does when the
// fleet's TLS work is not on its machine, as in a real outage.
func pinCPUs(pid int, cpus string) error {
	if cpus == "" {
		return nil
	}
	out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(pid)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pin pid %d to CPUs %s: %v: %s", pid, cpus, err, strings.TrimSpace(string(out)))
	}
	return nil
}
