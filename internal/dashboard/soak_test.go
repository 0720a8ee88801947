package dashboard_test

import (
	"context"
	"io"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/heapprofiler"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/tether-hub/tether/internal/hubclient"
	"github.com/tether-hub/tether/internal/sim"
)

// TestDashboardSoak leaves the fleet page open on a churning fleet (the
// simulator dropping a share of its devices every minute) for
// TETHER_DASHBOARD_SOAK (e.g. 10m; unset: skipped) and samples the page's
// JavaScript heap (after a collection) and the hub's Go heap and
// goroutines. It fails if the page's heap at the end is more than twice
// its size after the first fifth of the run: a leak of the live updates
// grows with time, a steady page does not.
func TestDashboardSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("TETHER_DASHBOARD_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set TETHER_DASHBOARD_SOAK=10m (a duration) to run the soak")
	}
	ctx, stop := browser(t)
	defer stop()
	h := startHub(t, nil)
	api, err := hubclient.New("https://"+h.HTTPSAddr(), mustConnString(t, h.OwnerConnectionString()), h.caPEM)
	if err != nil {
		t.Fatal(err)
	}
	faults, _ := sim.ParseFaults("drop=20%/min")
	simCtx, cancelSim := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := sim.Run(simCtx, sim.Config{Devices: 200, Prefix: "soak", Profile: "node", Ramp: 100, Duration: d + time.Minute,
			Faults: faults, Settle: time.Second, TokenTTL: 2 * time.Minute,
			HubName: h.HubName(), MQTTAddr: h.MQTTAddr(), HTTPSAddr: h.HTTPSAddr(), CAPEM: h.caPEM}, sim.Env{API: api, Out: io.Discard})
		done <- err
	}()
	defer func() { cancelSim(); <-done }()

	run(t, ctx, "sign-in page", 30*time.Second, chromedp.Navigate(h.base+"/"))
	signIn(t, ctx, h.policyConnString("iothubowner"))
	waitJS(t, ctx, "fleet", `document.querySelector('#main[data-page=fleet][data-ready]') !== null`, 20*time.Second)

	sample := func() (js float64, goHeap uint64, goroutines int) {
		if _, err := chromedp.Call(ctx, heapprofiler.CollectGarbage, cdp.Empty{}); err != nil {
			t.Fatal(err)
		}
		u, err := chromedp.Call(ctx, cdpruntime.GetHeapUsage, cdp.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return u.UsedSize, ms.HeapInuse, runtime.NumGoroutine()
	}
	every := d / 10
	start := time.Now()
	var base float64
	var last float64
	for i := 1; i <= 10; i++ {
		time.Sleep(every) // a soak runs for its duration: time is what it measures
		js, goHeap, gr := sample()
		t.Logf("%6s  page JS heap %7.1f KiB  hub Go heap %7.1f MiB  goroutines %5d  connected %s",
			time.Since(start).Round(time.Second), js/1024, float64(goHeap)/(1<<20), gr,
			eval[string](t, ctx, `document.getElementById('connected-now').textContent`))
		if i == 2 {
			base = js
		}
		last = js
	}
	if last > 2*base {
		t.Errorf("the page's heap grew from %.0f KiB to %.0f KiB", base/1024, last/1024)
	}
}
