package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tether-hub/tether/bench/loggen"
	"github.com/tether-hub/tether/internal/api"
	logsqlite "github.com/tether-hub/tether/internal/connlog/sqlite"
	"github.com/tether-hub/tether/internal/dashboard"
	"github.com/tether-hub/tether/internal/insight"
	"github.com/tether-hub/tether/internal/kql"
	kqlsqlite "github.com/tether-hub/tether/internal/kql/sqlite"
	"github.com/tether-hub/tether/internal/metrics"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/registry/memstore"
)

// The pages benchmark: each page's API calls, made as the page makes them
// (at once, as the browser's Promise.all does) through the dashboard's
// session handling, against 100,000 registered devices (one in ten
// connected) and a log store of bench/loggen records. The figure per page
// is the wall time until its last answer is read: what the page waits
// for before it draws. Target ≤ 300 ms.
//
// TETHER_DASHBOARD_BENCH_DB names a loggen SQLite store (bench/cmd/loggen
// -records 10000000 -end 2026-01-08T00:00:00Z); without it a store of
// 200,000 records is made in a temp dir. The clock of the API and the
// query engine is the newest record's time, so "the last hour" and "the
// last 24 h" hold what a hub with that log would hold now.

type benchEnv struct {
	h      http.Handler
	cookie string
	csrf   string
	device string
	deep   string // continuation token of the page at device 50,000
}

var (
	benchOnce sync.Once
	benchE    *benchEnv
	benchErr  error
)

func setupPages(b *testing.B) *benchEnv {
	benchOnce.Do(func() { benchE, benchErr = newBenchEnv(b) })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchE
}

func newBenchEnv(b *testing.B) (*benchEnv, error) {
	ctx := context.Background()
	path := os.Getenv("TETHER_DASHBOARD_BENCH_DB")
	if path == "" {
		dir, err := os.MkdirTemp("", "tether-pages-bench")
		if err != nil {
			return nil, err
		}
		path = filepath.Join(dir, "logs.db")
		if err := makeLog(ctx, path, 200_000); err != nil {
			return nil, err
		}
	}
	store, err := logsqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	var total, newest int64 // TimeGenerated is stored as Unix nanoseconds
	if err := store.DB().QueryRowContext(ctx, "SELECT count(*), max(TimeGenerated) FROM AzureDiagnostics").Scan(&total, &newest); err != nil {
		return nil, err
	}
	now := time.Unix(0, newest).UTC().Add(time.Millisecond)
	b.Logf("log store %s: %d records, newest %s", path, total, now.Format(time.RFC3339))

	const n = 100_000
	reg, err := registry.New(ctx, memstore.New(), registry.Options{HubName: hub,
		LiveState: func(id string) (bool, time.Time, time.Time) {
			return strings.HasSuffix(id, "0"), now.Add(-time.Hour), now.Add(-time.Minute)
		}})
	if err != nil {
		return nil, err
	}
	for i := range n {
		if _, err := reg.Create(ctx, registry.Device{DeviceID: loggen.DeviceID(i)}, "bench"); err != nil {
			return nil, err
		}
	}
	mstore, err := metrics.OpenStore(ctx, metrics.StoreOptions{Path: filepath.Join(b.TempDir(), "metrics.db"), Now: func() time.Time { return now }})
	if err != nil {
		return nil, err
	}
	if err := fillMetrics(ctx, mstore, now); err != nil {
		return nil, err
	}
	eng := insight.NewEngine(insight.Options{})
	srv := api.New(api.Deps{
		Registry: reg, HubName: hub, Now: func() time.Time { return now },
		Logs:     logFinder{store},
		Query:    &kql.Engine{DB: store, Table: kql.AzureDiagnostics(), Dialect: kqlsqlite.Dialect{}, Now: func() time.Time { return now }},
		Metrics:  mstore,
		Insights: insightSource{eng},
	})
	h := dashboard.New(dashboard.Options{Registry: reg, HubName: hub, API: srv})
	p, _ := reg.Policy("iothubowner")
	body := `{"credential":"HostName=` + hub + `;SharedAccessKeyName=iothubowner;SharedAccessKey=` + p.PrimaryKey + `"}`
	r := httptest.NewRequest("POST", "https://"+hub+"/ui/session", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		return nil, fmt.Errorf("sign-in: %d %s", w.Code, w.Body)
	}
	var info struct{ CSRF string }
	_ = json.Unmarshal(w.Body.Bytes(), &info)
	var cookie string
	for _, c := range w.Result().Cookies() {
		cookie = c.Name + "=" + c.Value
	}
	e := &benchEnv{h: h, cookie: cookie, csrf: info.CSRF, device: loggen.DeviceID(42)}
	// A continuation token half way through the registry, for a deep page.
	for range 50 {
		c := q("SELECT * FROM devices")
		c.headers = map[string]string{"x-ms-max-item-count": "1000", "x-ms-continuation": e.deep}
		w := e.serve(c)
		if w.Code != 200 || w.Header().Get("x-ms-continuation") == "" {
			return nil, fmt.Errorf("paging: %d %s", w.Code, w.Body)
		}
		e.deep = w.Header().Get("x-ms-continuation")
	}
	return e, nil
}

const hub = "bench.azure-devices.net"

// fillMetrics gives the history 7 days of minutes before now, as a hub
// with this log would hold them: the device gauges once a minute, and
// each minute's connects (by ResultType, Protocol and TokenRenewal) and
// disconnects (by ResultType, Protocol and Reason) as one sample of the
// minute's count per series — the rows a 7-day read of the minute table
// visits are the same whatever the counts.
func fillMetrics(ctx context.Context, s *metrics.Store, now time.Time) error {
	type series struct {
		metric string
		dims   []string
		n      float64
	}
	var all []series
	for _, c := range []struct {
		rt, proto, renewal string
		n                  float64
	}{
		{"Success", "MQTT", "false", 300}, {"Success", "MQTT", "true", 100}, {"Success", "MQTT-WS", "false", 60},
		{"Success", "MQTT-WS", "true", 20}, {"401003", "MQTT", "false", 15}, {"401003", "MQTT-WS", "false", 3},
		{"429005", "MQTT", "false", 2}, {"403002", "MQTT", "false", 1},
	} {
		all = append(all, series{metrics.Connects, []string{metrics.DimResultType, c.rt, metrics.DimProtocol, c.proto, metrics.DimTokenRenewal, c.renewal}, c.n})
	}
	for _, d := range []struct{ rt, reason string }{
		{"Success", "client"}, {"401003", "token-expired"}, {"404104", "network"}, {"404104", "keep-alive"},
		{"400027", "takeover"}, {"500001", "server-shutdown"},
	} {
		for _, proto := range []string{"MQTT", "MQTT-WS"} {
			all = append(all, series{metrics.Disconnects, []string{metrics.DimResultType, d.rt, metrics.DimProtocol, proto, metrics.DimReason, d.reason}, 40})
		}
	}
	start := now.Add(-7 * 24 * time.Hour).Truncate(time.Minute)
	for t := start; t.Before(now); t = t.Add(time.Minute) {
		for _, x := range all {
			s.Add(x.metric, t, x.n, x.dims...)
		}
		s.Tick(t, []metrics.GaugeSample{
			{Metric: metrics.ConnectedDevices, Value: 10_000}, {Metric: metrics.TotalDevices, Value: 100_000},
			{Metric: metrics.EnabledDevices, Value: 100_000}})
	}
	return s.Flush(ctx)
}

func makeLog(ctx context.Context, path string, n int) error {
	g, err := loggen.New(loggen.Options{Records: n, End: time.Date(2026, 1, 8, 0, 0, 0, 0, time.UTC), Span: 24 * time.Hour})
	if err != nil {
		return err
	}
	store, err := logsqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer store.Close()
	for {
		rs := g.Next(20_000)
		if len(rs) == 0 {
			break
		}
		if err := store.Append(ctx, rs); err != nil {
			return err
		}
	}
	_, err = store.DB().ExecContext(ctx, "ANALYZE")
	return err
}

type logFinder struct{ s *logsqlite.Store }

func (l logFinder) Find(ctx context.Context, f api.LogFilter) ([]map[string]any, error) {
	recs, err := l.s.Find(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, len(recs))
	for i, r := range recs {
		out[i] = r.Map()
	}
	return out, nil
}

type insightSource struct{ *insight.Engine }

func (insightSource) Pending() int64 { return 0 }

// call is one API request of a page.
type call struct {
	method, path, body string
	headers            map[string]string
}

func q(query string) call {
	b, _ := json.Marshal(map[string]string{"query": query})
	return call{method: "POST", path: "/devices/query?api-version=" + api.APIVersion, body: string(b), headers: map[string]string{"x-ms-max-item-count": "50"}}
}

func kqlCall(query, timespan string) call {
	m := map[string]string{"query": query}
	if timespan != "" {
		m["timespan"] = timespan
	}
	b, _ := json.Marshal(m)
	return call{method: "POST", path: "/api/v1/query", body: string(b)}
}

func get(path string) call { return call{method: "GET", path: path} }

// pages are the calls each page makes when it opens (assets/*.js).
func pages(device, deep string) map[string][]call {
	// fleet is the Fleet page over one of its ranges (metrics.js RANGES),
	// the renewals chart included (deviceConnects split by TokenRenewal).
	fleet := func(timespan, interval string) []call {
		metric := func(name, agg, filter string) call {
			p := "/api/v1/metrics?metricnames=" + name + "&aggregation=" + agg + "&timespan=" + timespan + "&interval=" + interval
			if filter != "" {
				p += "&$filter=" + url.QueryEscape(filter)
			}
			return get(p)
		}
		return []call{
			get("/api/v1/metrics?metricnames=connectedDeviceCount,totalDeviceCount&aggregation=Maximum&timespan=PT2M&interval=PT1S"),
			metric("connectedDeviceCount", "Maximum", ""),
			metric("deviceConnects", "Total", "ResultType eq '*' and TokenRenewal eq '*'"),
			metric("deviceDisconnects", "Total", "Reason eq '*'"),
			get("/api/v1/insights/incidents?limit=5"),
			get("/api/v1/insights/flapping?top=10"),
		}
	}
	count := func(query string) call { return get("/ui/devices/count?" + query) }
	dev := url.PathEscape(device)
	return map[string][]call{
		"fleet, last hour":    fleet("PT1H", "PT1M"),
		"fleet, last 6 hours": fleet("PT6H", "PT5M"),
		"fleet, last day":     fleet("P1D", "PT15M"),
		"fleet, last 7 days":  fleet("P7D", "PT1H"),
		// What the renewals chart cost before the TokenRenewal dimension:
		// a scan of the hour's connection records.
		"fleet, old renewals log scan (last hour, no longer made)": {
			kqlCall("AzureDiagnostics\n| where Category == \"Connections\" and OperationName == \"deviceConnect\" and TimeGenerated > ago(60m)\n| where properties_s has \"tokenRenewal\"\n| summarize renewals = count() by bin(TimeGenerated, 1m)", ""),
		},
		// The list is drawn from the first page; the count of matching
		// devices fills in after (from the metrics, or a COUNT query when
		// the filter has a search).
		"devices": {
			q("SELECT * FROM devices"),
		},
		"devices, count filled in after": {
			get("/api/v1/metrics?metricnames=totalDeviceCount,connectedDeviceCount,enabledDeviceCount&aggregation=Maximum&timespan=PT2M&interval=PT1S"),
		},
		"devices, page at 50,000": {
			{method: "POST", path: "/devices/query?api-version=" + api.APIVersion, body: `{"query":"SELECT * FROM devices"}`,
				headers: map[string]string{"x-ms-max-item-count": "50", "x-ms-continuation": deep}},
		},
		"devices, connected only": {
			q("SELECT * FROM devices WHERE connectionState = 'Connected'"),
		},
		"devices, search": {
			q("SELECT * FROM devices WHERE STARTSWITH(deviceId, 'device-0') AND connectionState = 'Disconnected' AND status = 'enabled'"),
		},
		// The count of a search's matches, from the registry's sorted ids.
		"devices, search count filled in after": {
			count("prefix=device-0&state=Disconnected&status=enabled"),
		},
		"devices, search count, prefix alone (all 100,000)": {
			count("prefix=device-"),
		},
		"devices, search count, prefix of all 100,000 + state (bounded: at least)": {
			count("prefix=device-&state=Connected"),
		},
		"devices, search count, prefix of all 100,000 + state, Count all": {
			count("prefix=device-&state=Connected&exact=1"),
		},
		// A policy without RegistryRead counts with a device query (a scan
		// of every twin); the page did so for every search before.
		"devices, search count by COUNT() query": {
			q("SELECT COUNT() AS n FROM devices WHERE STARTSWITH(deviceId, 'device-0') AND connectionState = 'Disconnected' AND status = 'enabled'"),
		},
		"device": {
			get("/devices/" + dev + "?api-version=" + api.APIVersion),
			get("/api/v1/logs?device=" + dev + "&since=24h&limit=5000"),
			get("/api/v1/devices/" + dev + "/diagnosis"),
			get("/twins/" + dev + "?api-version=" + api.APIVersion),
		},
		// The Logs page makes no call when it opens; these are queries run
		// from it.
		"logs, run: seed errors query, last hour": {
			kqlCall("AzureDiagnostics\n| where ( ResourceType == \"IOTHUBS\" and Category == \"Connections\" and Level == \"Error\")", "PT1H"),
		},
		"logs, run: summarize by bin, last 6 h": {
			kqlCall("AzureDiagnostics\n| where Category == \"Connections\" and TimeGenerated > ago(6h)\n| summarize count() by bin(TimeGenerated, 5m), OperationName", ""),
		},
	}
}

func (e *benchEnv) do(c call) (int, int) {
	w := e.serve(c)
	return w.Code, w.Body.Len()
}

func (e *benchEnv) serve(c call) *httptest.ResponseRecorder {
	r := httptest.NewRequest(c.method, "https://"+hub+c.path, strings.NewReader(c.body))
	r.Header.Set("Cookie", e.cookie)
	if c.method != "GET" {
		r.Header.Set(dashboard.CSRFHeader, e.csrf)
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkPages(b *testing.B) {
	e := setupPages(b)
	ps := pages(e.device, e.deep)
	names := make([]string, 0, len(ps))
	for n := range ps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		calls := ps[name]
		b.Run(name, func(b *testing.B) {
			var worst time.Duration
			cpu0 := cpuTime()
			for b.Loop() {
				start := time.Now()
				var wg sync.WaitGroup
				errs := make(chan string, len(calls))
				for _, c := range calls {
					wg.Go(func() {
						if code, _ := e.do(c); code >= 300 {
							errs <- fmt.Sprintf("%s %s: %d", c.method, c.path, code)
						}
					})
				}
				wg.Wait()
				close(errs)
				for msg := range errs {
					b.Fatal(msg)
				}
				worst = max(worst, time.Since(start))
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
			b.ReportMetric(float64(worst.Microseconds())/1000, "max-ms")
			// CPU time of the process per page (getrusage): steadier than wall
			// time on a shared machine; on 2 cores a page may use both.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/page")
		})
	}
}
