package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/dashboard"
	"github.com/tether-hub/tether/internal/hubclient"
	"github.com/tether-hub/tether/internal/sas"
	"github.com/tether-hub/tether/internal/sim"
)

const rulesYAML = `rules:
  - name: fleet-under-100
    description: Fewer than 100 devices connected
    severity: 2
    metric: {name: connectedDeviceCount, aggregation: Maximum}
    operator: LessThan
    threshold: 100
    frequency: 1s
    window: 1s
  - name: disconnects
    description: Devices disconnected in the last 5 minutes
    severity: 3
    metric: {name: deviceDisconnects, aggregation: Total}
    operator: GreaterThan
    threshold: 0
    frequency: 2s
    window: 5m
`

// TestDashboardInBrowser drives the dashboard in headless Chromium
// against an in-process hub: sign-in and its cookie, the fleet page
// following a simulated fleet live, a takeover on the device timeline,
// KQL results and positioned errors, dead-letter replay, a read-only
// policy without write actions, and refusals without a session or with a
// wrong CSRF token. It writes a 1440×900 screenshot of every page
// (TETHER_UPDATE_SCREENSHOTS=1: into docs/dashboard).
func TestDashboardInBrowser(t *testing.T) {
	ctx, stop := browser(t)
	defer stop()
	shots := t.TempDir()
	if updateScreenshots {
		shots = filepath.Join("..", "..", "docs", "dashboard")
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(rulesYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startHub(t, func(c *app.Config) {
		c.RulesFile = rules
		c.EventRetrySchedule = []time.Duration{100 * time.Millisecond}
	})

	// Before sign-in: only the sign-in page and its public assets.
	t.Run("nothing before sign-in", func(t *testing.T) {
		status, body := h.request("GET", "/", "", nil)
		if status != 200 || !strings.Contains(body, `id="signin"`) || strings.Contains(body, "app.js") {
			t.Fatalf("GET / without a session: %d\n%s", status, body)
		}
		for _, p := range []string{"/ui/app.js", "/ui/fleet.js", "/ui/api.js", "/ui/app.html", "/ui/session"} {
			if status, body := h.request("GET", p, "", nil); status != http.StatusUnauthorized {
				t.Errorf("GET %s without a session: %d %s", p, status, body)
			}
		}
		for _, p := range []string{"/ui/signin.js", "/ui/style.css", "/ui/icon.svg"} {
			if status, _ := h.request("GET", p, "", nil); status != 200 {
				t.Errorf("GET %s: %d", p, status)
			}
		}
		if status, _ := h.request("GET", "/api/v1/logs", "", nil); status != http.StatusUnauthorized {
			t.Errorf("GET /api/v1/logs without a session or token: %d", status)
		}
		// A sign-in from another site's page is refused.
		if status, _ := h.request("POST", "/ui/session", `{"credential":"`+h.policyConnString("iothubowner")+`"}`,
			map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}); status != http.StatusForbidden {
			t.Errorf("cross-origin sign-in: %d", status)
		}
	})

	base := h.base
	run(t, ctx, "sign-in page", 30*time.Second, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#credential")))
	screenshot(t, ctx, shots, "signin")

	// A wrong key is refused with a message; the owner's connection string signs in.
	run(t, ctx, "wrong key", 20*time.Second,
		chromedp.SendKeys(chromedp.CSS("#credential"), "bm90IGEga2V5"),
		chromedp.Click(chromedp.CSS("#signin-button")),
		chromedp.WaitVisible(chromedp.CSS("#error")))
	signIn(t, ctx, h.policyConnString("iothubowner"))

	t.Run("session cookie", func(t *testing.T) {
		res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base}})
		if err != nil {
			t.Fatal(err)
		}
		var c *network.Cookie
		for _, x := range res.Cookies {
			if x.Name == dashboard.CookieName {
				c = x
			}
		}
		if c == nil {
			t.Fatalf("no %s cookie: %+v", dashboard.CookieName, res.Cookies)
		}
		if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteStrict || c.Session || c.Expires <= float64(time.Now().Unix()) ||
			c.Expires > float64(time.Now().Add(13*time.Hour).Unix()) {
			t.Errorf("cookie %+v: want HttpOnly, Secure, SameSite=Strict, expiring within 12 h", c)
		}
		if v := eval[string](t, ctx, `document.cookie`); strings.Contains(v, dashboard.CookieName) {
			t.Errorf("the session cookie is readable by scripts: %q", v)
		}
	})

	// Fleet: N simulated devices show as connected within 2 s of the hub
	// having them all. The simulator runs to the end of the test.
	parent := t
	t.Run("fleet follows the simulator", func(t *testing.T) {
		const n = 24
		waitJS(t, ctx, "fleet page", `document.querySelector('#main[data-page=fleet][data-ready]') !== null`, 20*time.Second)
		api, err := hubclient.New("https://"+h.HTTPSAddr(), mustConnString(t, h.OwnerConnectionString()), h.caPEM)
		if err != nil {
			t.Fatal(err)
		}
		simCtx, cancelSim := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := sim.Run(simCtx, sim.Config{
				Devices: n, Prefix: "sim", Profile: "node", Ramp: 200, Duration: 5 * time.Minute, Settle: time.Second,
				HubName: h.HubName(), MQTTAddr: h.MQTTAddr(), HTTPSAddr: h.HTTPSAddr(), CAPEM: h.caPEM,
			}, sim.Env{API: api, Out: io.Discard})
			done <- err
		}()
		parent.Cleanup(func() { cancelSim(); <-done })
		var all time.Time
		eventually(t, 30*time.Second, func() error {
			if c := h.Presence().Connected(); c != n {
				return fmt.Errorf("%d of %d devices connected", c, n)
			}
			all = time.Now()
			return nil
		})
		waitJS(t, ctx, fmt.Sprintf("the fleet page to show %d connected", n),
			fmt.Sprintf(`document.getElementById('connected-now')?.dataset.count === '%d'`, n), 10*time.Second)
		if took := time.Since(all); took > 2*time.Second {
			t.Errorf("the fleet page showed %d connected %s after the hub had them (want ≤ 2 s)", n, took.Round(time.Millisecond))
		} else {
			t.Logf("the fleet page showed %d connected %s after the hub had them", n, took.Round(time.Millisecond))
		}
		// Churn for the fleet picture, taken at the end: devices that drop
		// and renew their tokens.
		faults, err := sim.ParseFaults("drop=60%/min")
		if err != nil {
			t.Fatal(err)
		}
		churnCtx, cancelChurn := context.WithCancel(context.Background())
		churnDone := make(chan error, 1)
		go func() {
			_, err := sim.Run(churnCtx, sim.Config{
				Devices: 16, Prefix: "churn", Profile: "node", Ramp: 50, Duration: 5 * time.Minute, Settle: time.Second,
				Faults: faults, TokenTTL: 15 * time.Second,
				HubName: h.HubName(), MQTTAddr: h.MQTTAddr(), HTTPSAddr: h.HTTPSAddr(), CAPEM: h.caPEM,
			}, sim.Env{API: api, Out: io.Discard})
			churnDone <- err
		}()
		parent.Cleanup(func() { cancelChurn(); <-churnDone })
	})

	// Leaving a page closes its live feeds: after going round the pages
	// several times, only the current page's feed is open.
	t.Run("feeds closed on leaving", func(t *testing.T) {
		for range 5 {
			for _, p := range []string{"fleet", "device/sim-1", "events", "logs"} {
				run(t, ctx, p, 20*time.Second, chromedp.Navigate(base+"/#/"+p))
				waitJS(t, ctx, p, fmt.Sprintf(`document.querySelector('#main[data-page=%s][data-ready]') !== null`, strings.Split(p, "/")[0]), 20*time.Second)
			}
		}
		if n := eval[float64](t, ctx, `tetherOpenStreams()`); n != 0 {
			t.Errorf("on the logs page %v feeds are open, want 0", n)
		}
		run(t, ctx, "fleet", 20*time.Second, chromedp.Navigate(base+"/#/fleet"))
		waitJS(t, ctx, "fleet", `document.querySelector('#main[data-page=fleet][data-ready]') !== null`, 20*time.Second)
		if n := eval[float64](t, ctx, `tetherOpenStreams()`); n != 1 {
			t.Errorf("on the fleet page %v feeds are open, want 1", n)
		}
	})

	t.Run("devices page", func(t *testing.T) {
		run(t, ctx, "devices page", 20*time.Second, chromedp.Navigate(base+"/#/devices"))
		waitJS(t, ctx, "device list", `document.querySelectorAll('#devices-table tbody tr').length > 0`, 20*time.Second)
		run(t, ctx, "search", 20*time.Second,
			chromedp.SendKeys(chromedp.CSS("#search"), "sim-1"), chromedp.Click(chromedp.CSS("#apply-filters")))
		// sim-1, sim-10 … sim-19
		waitJS(t, ctx, "search results", `document.getElementById('device-count').dataset.total === '11'`, 20*time.Second)
		for _, sel := range []string{"#create-device", "[data-action=toggle]", "[data-action=delete]"} {
			if !eval[bool](t, ctx, fmt.Sprintf(`document.querySelector(%q) !== null`, sel)) {
				t.Errorf("the owner does not see %s", sel)
			}
		}
		run(t, ctx, "clear search", 20*time.Second, chromedp.Navigate(base+"/#/devices?x=1"))
		waitJS(t, ctx, "device list", `document.querySelectorAll('#devices-table tbody tr').length > 0`, 20*time.Second)
		screenshot(t, ctx, shots, "devices")
	})

	// A takeover: the device page, open before it happens, shows the
	// disconnect with 400027 without a reload.
	t.Run("takeover on the device timeline", func(t *testing.T) {
		key := h.device("press-7")
		first := h.connect("press-7", key)
		defer first.Close()
		run(t, ctx, "device page", 20*time.Second, chromedp.Navigate(base+"/#/device/press-7"))
		waitJS(t, ctx, "device page", `document.querySelector('#main[data-page=device][data-ready]') !== null && (document.getElementById('timeline').dataset.marks ?? null) !== null`, 20*time.Second)
		second := h.connect("press-7", key)
		defer second.Close()
		waitJS(t, ctx, "the takeover on the timeline", `(document.getElementById('timeline').dataset.marks || '').split(',').includes('400027')`, 40*time.Second)
		if txt := eval[string](t, ctx, `[...document.querySelectorAll('#timeline .mark.drop text')].map(e => e.textContent).join('|')`); !strings.Contains(txt, "400027") {
			t.Errorf("timeline marks: %q", txt)
		}
		screenshot(t, ctx, shots, "device")
		// a twin update from the page
		eval[bool](t, ctx, `(document.getElementById('twin-patch').value = '{"tags":{"line":"seven"}}', true)`)
		run(t, ctx, "update the twin", 10*time.Second, chromedp.Click(chromedp.CSS("#twin-update")))
		waitJS(t, ctx, "the updated twin", `document.getElementById('twin').textContent.includes('"seven"')`, 20*time.Second)
		if tw, _ := h.Registry().Twin("press-7"); tw == nil {
			t.Error("no twin written")
		}
	})

	t.Run("logs", func(t *testing.T) {
		run(t, ctx, "logs page", 20*time.Second, chromedp.Navigate(base+"/#/logs"), chromedp.WaitVisible(chromedp.CSS("#kql")))
		setQuery(t, ctx, `AzureDiagnostics
| where Category == "Connections"
| summarize n = count() by bin(TimeGenerated, 1m), OperationName`)
		run(t, ctx, "run", 10*time.Second, chromedp.Click(chromedp.CSS("#run")))
		waitJS(t, ctx, "query rows", `document.getElementById('main').dataset.state === 'done' && document.querySelectorAll('#results tbody tr').length > 0`, 20*time.Second)
		if !eval[bool](t, ctx, `document.querySelector('#query-chart svg.chart') !== null`) {
			t.Error("a summarize over bin(TimeGenerated, …) drew no chart")
		}
		screenshot(t, ctx, shots, "logs")
		// the CSV export quotes what needs quoting
		if got := eval[string](t, ctx, `import('/ui/logs.js').then(m => m.csv({columns: [{name: 'a'}, {name: 'b'}], rows: [['x,y', 'q"z'], [1, null]]}))`); got != "a,b\r\n\"x,y\",\"q\"\"z\"\r\n1,\r\n" {
			t.Errorf("CSV export: %q", got)
		}
		setQuery(t, ctx, "AzureDiagnostics\n| where DeviceID == \"press-7\"")
		run(t, ctx, "run", 10*time.Second, chromedp.Click(chromedp.CSS("#run")))
		waitJS(t, ctx, "the error position", `document.getElementById('main').dataset.state === 'error'`, 20*time.Second)
		if txt := eval[string](t, ctx, `document.getElementById('error-position')?.textContent || ''`); !strings.HasPrefix(txt, "line 2:9:") {
			t.Errorf("syntax error shown as %q, want it at line 2:9", txt)
		}
		screenshot(t, ctx, shots, "logs-error")
	})

	t.Run("events", func(t *testing.T) {
		run(t, ctx, "events page", 20*time.Second, chromedp.Navigate(base+"/#/events"))
		waitJS(t, ctx, "the event stream", `document.getElementById('live-state')?.textContent === 'live'`, 20*time.Second)
		c := h.connect("press-8", h.device("press-8"))
		waitJS(t, ctx, "a live event", `[...document.querySelectorAll('#event-rows td')].some(td => td.textContent === 'press-8')`, 20*time.Second)
		c.Close()
		screenshot(t, ctx, shots, "events")
	})

	t.Run("dead-letter replay", func(t *testing.T) {
		rc := &flakyReceiver{}
		srv := httptest.NewServer(rc)
		defer srv.Close()
		def := hubclient.WebhookSubscription("ops-hook", srv.URL, 0)
		def["retryPolicy"] = map[string]any{"maxDeliveryAttempts": 1}
		if status, body := h.owner("POST", "/api/v1/subscriptions", def); status != 201 {
			t.Fatalf("create subscription: %d %s", status, body)
		}
		key := h.device("press-9")
		h.connect("press-9", key).Close()
		eventually(t, 20*time.Second, func() error {
			status, body := h.owner("GET", "/api/v1/subscriptions/ops-hook/deadletters", nil)
			var l struct{ DeadLetters []json.RawMessage }
			_ = json.Unmarshal(body, &l)
			if status != 200 || len(l.DeadLetters) < 2 {
				return fmt.Errorf("dead letters: %d %s", status, body)
			}
			return nil
		})
		rc.healed.Store(true)
		run(t, ctx, "subscriptions page", 20*time.Second, chromedp.Navigate(base+"/#/subscriptions"))
		waitJS(t, ctx, "the dead letters", `document.querySelectorAll('#subscriptions-table tbody tr').length > 0`, 20*time.Second)
		run(t, ctx, "open ops-hook", 10*time.Second, chromedp.Click(chromedp.CSS(`button[data-sub="ops-hook"]`)))
		waitJS(t, ctx, "the dead letters of ops-hook", `document.querySelectorAll('#deadletters-table tbody tr').length >= 2`, 20*time.Second)
		screenshot(t, ctx, shots, "subscriptions")
		run(t, ctx, "replay", 10*time.Second, chromedp.Click(chromedp.CSS("#replay-all")))
		waitJS(t, ctx, "the replay", `Number(document.getElementById('subscription-detail').dataset.replayed) >= 2`, 20*time.Second)
		eventually(t, 20*time.Second, func() error {
			if n := rc.count(); n < 2 {
				return fmt.Errorf("the receiver got %d replayed events", n)
			}
			return nil
		})
	})

	t.Run("alerts and settings", func(t *testing.T) {
		run(t, ctx, "alerts page", 20*time.Second, chromedp.Navigate(base+"/#/alerts"))
		waitJS(t, ctx, "the rules", `document.querySelectorAll('#rules-table tbody tr').length === 2`, 20*time.Second)
		screenshot(t, ctx, shots, "alerts")
		run(t, ctx, "settings page", 20*time.Second, chromedp.Navigate(base+"/#/settings"))
		waitJS(t, ctx, "the settings", `document.querySelector('#main[data-page=settings][data-ready]') !== null`, 20*time.Second)
		screenshot(t, ctx, shots, "settings")
	})

	t.Run("fleet picture", func(t *testing.T) {
		run(t, ctx, "fleet page", 20*time.Second, chromedp.Navigate(base+"/#/fleet?range=PT1H"), chromedp.Reload())
		waitJS(t, ctx, "the fleet page and its renewals chart", `document.querySelector('#main[data-page=fleet][data-ready]') !== null && document.getElementById('chart-renewals').dataset.state === 'done'`, 20*time.Second)
		// The churning devices renew 15 s tokens: the renewals chart, read
		// from deviceConnects' TokenRenewal dimension, shows them.
		eventually(t, 40*time.Second, func() error {
			if n := eval[string](t, ctx, `document.getElementById('chart-renewals').dataset.renewals || '0'`); n == "0" {
				run(t, ctx, "fleet page", 20*time.Second, chromedp.Reload())
				waitJS(t, ctx, "the renewals chart", `document.getElementById('chart-renewals')?.dataset.state === 'done'`, 20*time.Second)
				return fmt.Errorf("no renewal on the chart")
			}
			return nil
		})
		screenshot(t, ctx, shots, "fleet")
		// the same page in the dark scheme
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
			t.Fatal(err)
		}
		screenshot(t, ctx, shots, "fleet-dark")
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("session refusals", func(t *testing.T) {
		res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base}})
		if err != nil {
			t.Fatal(err)
		}
		var cookie string
		for _, c := range res.Cookies {
			if c.Name == dashboard.CookieName {
				cookie = c.Name + "=" + c.Value
			}
		}
		csrf := eval[string](t, ctx, `fetch('/ui/session').then(r => r.json()).then(s => s.csrf)`)
		send := `{"payload":"hi"}`
		path := "/api/v1/devices/press-9/messages"
		for _, c := range []struct {
			name    string
			headers map[string]string
			want    int
		}{
			{"no session", map[string]string{"Content-Type": "application/json"}, 401},
			{"a session that does not exist", map[string]string{"Cookie": dashboard.CookieName + "=bm9wZQ", "Content-Type": "application/json"}, 401},
			{"no CSRF token", map[string]string{"Cookie": cookie, "Content-Type": "application/json"}, 403},
			{"a wrong CSRF token", map[string]string{"Cookie": cookie, dashboard.CSRFHeader: "x" + csrf, "Content-Type": "application/json"}, 403},
			{"the right token from another origin", map[string]string{"Cookie": cookie, dashboard.CSRFHeader: csrf, "Origin": "https://evil.example", "Content-Type": "application/json"}, 403},
			{"the right token", map[string]string{"Cookie": cookie, dashboard.CSRFHeader: csrf, "Content-Type": "application/json"}, 202},
		} {
			if status, body := h.request("POST", path, send, c.headers); status != c.want {
				t.Errorf("%s: %d %s, want %d", c.name, status, body, c.want)
			}
		}
		// From the page itself: a fetch without the header is refused too.
		if s := eval[float64](t, ctx, `fetch('/devices/press-9?api-version=2021-04-12', {method: 'DELETE', headers: {'If-Match': '*'}}).then(r => r.status)`); s != 403 {
			t.Errorf("DELETE without CSRF from the page: %v", s)
		}
		if _, err := h.Registry().Get(context.Background(), "press-9"); err != nil {
			t.Errorf("press-9 is gone after a refused delete: %v", err)
		}
	})

	// Sign out, then a read-only policy sees no write actions.
	t.Run("read-only policy", func(t *testing.T) {
		run(t, ctx, "sign out", 20*time.Second, chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#credential")))
		if status, _ := h.request("GET", "/ui/session", "", nil); status != 401 {
			t.Errorf("session after sign-out: %d", status)
		}
		signIn(t, ctx, h.policyConnString("registryRead"))
		run(t, ctx, "devices page", 20*time.Second, chromedp.Navigate(base+"/#/devices"))
		waitJS(t, ctx, "device list", `document.querySelectorAll('#devices-table tbody tr').length > 0`, 20*time.Second)
		checkNoWrites(t, ctx, "devices")
		screenshot(t, ctx, shots, "devices-readonly")
		run(t, ctx, "device page", 20*time.Second, chromedp.Navigate(base+"/#/device/press-7"))
		waitJS(t, ctx, "device page", `document.querySelector('#main[data-page=device][data-ready]') !== null`, 20*time.Second)
		checkNoWrites(t, ctx, "device")
		for _, page := range []string{"subscriptions", "alerts", "fleet"} {
			run(t, ctx, page, 20*time.Second, chromedp.Navigate(base+"/#/"+page))
			waitJS(t, ctx, page, fmt.Sprintf(`document.querySelector('#main[data-page=%s][data-ready]') !== null`, page), 20*time.Second)
			checkNoWrites(t, ctx, page)
		}
		// and the hub refuses a write from this session even with its token
		defer func() {
			// A ServiceConnect-only policy: pages whose calls need RegistryRead
			// show those calls' refusals and stay signed in.
			run(t, ctx, "sign out", 20*time.Second, chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#credential")))
			signIn(t, ctx, h.policyConnString("service"))
			for _, page := range []string{"fleet", "device/press-7", "devices"} {
				run(t, ctx, page, 20*time.Second, chromedp.Navigate(base+"/#/"+page))
				waitJS(t, ctx, page, fmt.Sprintf(`document.querySelector('#main[data-page=%s][data-ready]') !== null`, strings.Split(page, "/")[0]), 20*time.Second)
			}
			waitJS(t, ctx, "the device list", `document.querySelectorAll('#devices-table tbody tr').length > 0`, 20*time.Second)
			if !eval[bool](t, ctx, `document.getElementById('signout') !== null && document.getElementById('credential') === null`) {
				t.Error("a service session was sent back to sign-in")
			}
		}()
		if s := eval[float64](t, ctx, `fetch('/ui/session').then(r => r.json()).then(s => fetch('/devices/press-9?api-version=2021-04-12', {method: 'DELETE', headers: {'If-Match': '*', 'X-CSRF-Token': s.csrf}})).then(r => r.status)`); s != 401 {
			t.Errorf("DELETE by a registryRead session: %v", s)
		}
	})
}

// writeSelectors are the controls that change something.
var writeSelectors = []string{"#create-device", "[data-action=toggle]", "[data-action=delete]", "#replay-all", "#replay-selected",
	"#reload-rules", "#method-name", "#c2d-payload", "#twin-patch"}

func checkNoWrites(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	for _, sel := range writeSelectors {
		if eval[bool](t, ctx, fmt.Sprintf(`document.querySelector(%q) !== null`, sel)) {
			t.Errorf("%s page: a read-only policy sees %s", page, sel)
		}
	}
}

func signIn(t *testing.T, ctx context.Context, cred string) {
	t.Helper()
	run(t, ctx, "sign in", 30*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#credential")),
		chromedp.SetValue(chromedp.CSS("#credential"), cred),
		chromedp.Click(chromedp.CSS("#signin-button")),
		chromedp.WaitVisible(chromedp.CSS("#signout")))
	waitJS(t, ctx, "the first page", `document.querySelector('#main[data-ready]') !== null`, 20*time.Second)
}

func setQuery(t *testing.T, ctx context.Context, q string) {
	t.Helper()
	b, _ := json.Marshal(q)
	eval[bool](t, ctx, `(document.getElementById('kql').value = `+string(b)+`, true)`)
}

func mustConnString(t *testing.T, s string) sas.ConnectionString {
	cs, err := sas.ParseConnectionString(s)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
