package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-hub/tether/bench/loggen"
	"github.com/tether-hub/tether/internal/mqttclient"
	"github.com/tether-hub/tether/internal/sas"
)

// queryBudgetMiB is the hub's documented memory budget under log queries
// on a 2-core machine with the default limits (docs/ARCHITECTURE.md,
// "Query memory budget"): the process's peak RSS while 20 clients send
// the worst queries below, back to back.
const queryBudgetMiB = 384

// budgetQueries are the worst queries found (issue 17): each builds as much
// as the limits let it, in a different place — strings, one wide row, the
// result, a set, grouping keys — or runs until the timeout.
func budgetQueries() map[string]string {
	ten := func(s string) string { return strings.TrimSuffix(strings.Repeat(s+", ", 10), ", ") }
	// properties_s is 300–750 bytes: b is 3–7.5 KB ×10 = 30–75 KB.
	b := "AzureDiagnostics | extend a = strcat(" + ten("properties_s") + ") | extend b = strcat(" + ten("a") + ")"
	var wide []string
	for i := range 60 {
		wide = append(wide, fmt.Sprintf("c%d = c", i))
	}
	return map[string]string{
		// The query, verbatim in shape.
		"strcat explosion": b + " | extend c = strcat(" + ten("b") + ") | extend d = strcat(" + ten("c") + ") | summarize sum(strlen(d))",
		// Strings just under the value limit, for every row: CPU-bound.
		"large strings": b + " | extend c = strcat(b, b, b) | summarize sum(strlen(c))",
		// 60 columns of ~150 KB: the widest row the limits allow.
		"wide rows": b + " | extend c = strcat(b, b) | project " + strings.Join(wide, ", "),
		// The largest result: 24 MiB of cells.
		"large result": b + " | project b, TimeGenerated, DeviceId",
		"large sets":   b + " | summarize make_set(strcat(DeviceId, b))",
		// Every row a distinct grouping key of ~50 KB: the sorter spills.
		"large keys": b + " | summarize count() by b, DeviceId | count",
	}
}

// BenchmarkQueryBudget: with the GC settings of tether serve, 20 clients (three keys with RegistryRead) send
// the worst queries in a loop over ~11,000 log records for 40 s, ignoring
// Retry-After (they retry 100 ms after a 429), while a device connects
// over MQTT every 50 ms and /api/v1/health is asked every 50 ms. It fails
// when the process's peak RSS passes queryBudgetMiB or either latency's p99
// passes 100 ms. The clients run in the process: they discard answers as
// they read them, so the RSS is the hub's plus a few MiB.
//
//	go test -run X -bench QueryBudget -benchtime 1x ./internal/app/
func BenchmarkQueryBudget(b *testing.B) {
	const (
		clients  = 20
		duration = 40 * time.Second
		records  = 11_000
	)
	// As tether serve runs (cmd/tether/serve.go: GC percent 200 unless
	// GOGC is set): more heap headroom, so a higher RSS than go test's 100.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(200))
	}
	for range b.N {
		h := startHubWith(b, b.TempDir(), nil)
		g, err := loggen.New(loggen.Options{Records: records, Devices: 1000, End: time.Now(), Span: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		for rs := g.Next(2000); len(rs) > 0; rs = g.Next(2000) {
			if err := h.Logs().Append(context.Background(), rs); err != nil {
				b.Fatal(err)
			}
		}
		probeKey := h.device("probe")
		var tokens []string
		for _, p := range []string{"iothubowner", "registryRead", "registryReadWrite"} {
			pol, ok := h.Registry().Policy(p)
			if !ok {
				b.Fatalf("no policy %s", p)
			}
			tok, err := sas.Sign("localhost", pol.PrimaryKey, p, time.Now().Add(time.Hour))
			if err != nil {
				b.Fatal(err)
			}
			tokens = append(tokens, tok)
		}
		httpc := &http.Client{Transport: &http.Transport{TLSClientConfig: h.tlsConfig(), MaxConnsPerHost: clients + 2, MaxIdleConnsPerHost: clients + 2}}
		base := "https://" + h.HTTPSAddr()
		queries := budgetQueries()
		if only := os.Getenv("TETHER_BUDGET_ONLY"); only != "" {
			for n := range queries {
				if !strings.Contains(n, only) {
					delete(queries, n)
				}
			}
		}
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range queries {
				if !yield(n) {
					return
				}
			}
		})

		// The same probes with no query first: what this machine gives
		// without them.
		var idleConnects, idleHealth []time.Duration
		var iwg sync.WaitGroup
		ictx, icancel := context.WithTimeout(context.Background(), 5*time.Second)
		probe(ictx, b, &iwg, h, probeKey, httpc, &idleConnects, &idleHealth)
		iwg.Wait()
		icancel()
		rss0 := rssKiB()
		if rss0 == 0 {
			b.Skip("no /proc/self/status: the budget is measured on Linux")
		}
		ctx, cancel := context.WithTimeout(context.Background(), duration)
		var peak atomic.Int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if r := rssKiB(); r > peak.Load() {
					peak.Store(r)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
		var mu sync.Mutex
		outcomes := map[string]map[string]int{} // query → status/code → count
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := i; ctx.Err() == nil; k++ {
					name := names[k%len(names)]
					status := budgetQuery(ctx, httpc, base, tokens[i%len(tokens)], queries[name])
					if status == "" {
						return
					}
					mu.Lock()
					if outcomes[name] == nil {
						outcomes[name] = map[string]int{}
					}
					outcomes[name][status]++
					mu.Unlock()
					if strings.HasPrefix(status, "429") {
						time.Sleep(100 * time.Millisecond)
					}
				}
			}()
		}
		var connects, health []time.Duration
		probe(ctx, b, &wg, h, probeKey, httpc, &connects, &health)
		wg.Wait()
		cancel()

		peakMiB := float64(peak.Load()) / 1024
		cp99, hp99 := p99(connects), p99(health)
		b.ReportMetric(float64(rss0)/1024, "rss-before-MiB")
		b.ReportMetric(peakMiB, "rss-peak-MiB")
		b.ReportMetric(float64(cp99.Microseconds())/1000, "connect-p99-ms")
		b.ReportMetric(float64(hp99.Microseconds())/1000, "health-p99-ms")
		for _, n := range names {
			b.Logf("%-17s %v", n, outcomes[n])
		}
		b.Logf("without queries: connect p99 %s, health p99 %s", p99(idleConnects), p99(idleHealth))
		b.Logf("RSS %.0f MiB before, %.0f MiB peak", float64(rss0)/1024, peakMiB)
		b.Logf("%d connects (p99 %s, max %s), %d health checks (p99 %s, max %s)",
			len(connects), cp99, slices.Max(connects), len(health), hp99, slices.Max(health))
		if peakMiB > queryBudgetMiB {
			b.Errorf("peak RSS %.0f MiB, budget %d MiB", peakMiB, queryBudgetMiB)
		}
		if cp99 > 100*time.Millisecond || hp99 > 100*time.Millisecond {
			b.Errorf("p99 connect %s, health %s: want < 100 ms", cp99, hp99)
		}
		h.stop()
	}
}

// probe connects a device over MQTT and asks /api/v1/health, each every
// 50 ms until ctx ends, appending the latencies.
func probe(ctx context.Context, b *testing.B, wg *sync.WaitGroup, h *hub, key string, httpc *http.Client, connects, health *[]time.Duration) {
	tok := h.token("probe", key, time.Hour)
	base := "https://" + h.HTTPSAddr()
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			d, err := timeConnect(h.TCPAddr(), "probe", username("probe"), tok)
			if err != nil {
				b.Errorf("MQTT connect: %v", err)
				return
			}
			*connects = append(*connects, d)
			time.Sleep(50 * time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			start := time.Now()
			resp, err := httpc.Get(base + "/api/v1/health")
			if err != nil {
				b.Errorf("health: %v", err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			*health = append(*health, time.Since(start))
			time.Sleep(50 * time.Millisecond)
		}
	}()
}

// budgetQuery posts one query and reads the answer away; it returns
// "<status> <error code>" ("" once ctx ended).
func budgetQuery(ctx context.Context, c *http.Client, base, token, q string) string {
	body, _ := json.Marshal(map[string]string{"query": q, "timespan": "PT2H"})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/query", bytes.NewReader(body))
	req.Header.Set("Authorization", token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	status := strconv.Itoa(resp.StatusCode)
	// The error code is near the start of an error body; a result is
	// read away without being held.
	head := make([]byte, 512)
	n, _ := io.ReadFull(resp.Body, head)
	_, _ = io.Copy(io.Discard, resp.Body)
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if resp.StatusCode != 200 && json.Unmarshal(head[:n], &e) == nil {
		status += " " + e.Error.Code
	}
	return status
}

// timeConnect dials MQTT over TCP and times CONNECT → CONNACK, then
// disconnects.
func timeConnect(addr, id, user, pass string) (time.Duration, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(mqttclient.ConnectPacket(id, user, pass, 60, true)); err != nil {
		return 0, err
	}
	if _, err := mqttclient.ReadConnack(c); err != nil {
		return 0, err
	}
	d := time.Since(start)
	_, _ = c.Write([]byte{0xE0, 0})
	return d, nil
}

func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)*99)/100]
}

// rssKiB reads VmRSS of /proc/self/status in KiB (0 if unreadable).
func rssKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return n
		}
	}
	return 0
}
