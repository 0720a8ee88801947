package dashboard_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/mqttclient"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/sas"
)

var updateScreenshots = os.Getenv("TETHER_UPDATE_SCREENSHOTS") != ""

// chromiumPath finds the browser: $TETHER_CHROMIUM, Debian's chromium, or
// another Chrome on PATH. Without one the browser tests skip, unless
// TETHER_REQUIRE_CHROMIUM=1 (scripts/test) makes that a failure.
func chromiumPath(t *testing.T) string {
	t.Helper()
	cands := []string{os.Getenv("TETHER_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("TETHER_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("no Chromium found (apt-get install chromium), and TETHER_REQUIRE_CHROMIUM=1")
	}
	t.Skip("no Chromium found: apt-get install chromium (or set TETHER_CHROMIUM)")
	return ""
}

// browser starts headless Chromium with a fresh profile, a 1440×900
// window, and the dev CA's certificate errors ignored (the hub's
// certificate is for localhost from a CA Chromium does not know).
func browser(t *testing.T) (context.Context, context.CancelFunc) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1440, 900)); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx, func() { cancelCtx(); cancelAlloc() }
}

// run runs actions with a deadline, failing the test with what was
// being waited for.
func run(t *testing.T, ctx context.Context, what string, within time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v\npage text:\n%s", what, err, pageText(ctx))
	}
}

// pageText is the page's visible text, for failure messages.
func pageText(ctx context.Context) string {
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(c, chromedp.Evaluate[string](`(document.getElementById('main') || document.body).innerText.slice(0, 3000)`))
	return s
}

// eval evaluates a JavaScript expression.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS polls a JavaScript condition until it is true.
func waitJS(t *testing.T, ctx context.Context, what, expr string, within time.Duration) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, expr, err, pageText(ctx))
	}
}

// screenshot writes the page as docs/dashboard/<name>.png when
// TETHER_UPDATE_SCREENSHOTS is set, else into the test's temp dir.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// testHub is an in-process hub for the browser tests.
type testHub struct {
	*app.App
	t      *testing.T
	caPEM  []byte
	client *http.Client
	base   string
}

func startHub(t *testing.T, configure func(*app.Config)) *testHub {
	t.Helper()
	cfg := app.Config{
		DataDir: t.TempDir(), HubName: "localhost", Dev: true,
		MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0",
		ConnectTimeout: 2 * time.Second,
	}
	if configure != nil {
		configure(&cfg)
	}
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	ca, err := os.ReadFile(a.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	_, port, _ := strings.Cut(a.HTTPSAddr(), ":")
	h := &testHub{App: a, t: t, caPEM: ca, base: "https://localhost:" + port,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, a.HTTPSAddr())
			},
		}}}
	return h
}

// policyConnString is the service connection string of policy name.
func (h *testHub) policyConnString(name string) string {
	p, ok := h.Registry().Policy(name)
	if !ok {
		h.t.Fatalf("no policy %s", name)
	}
	return fmt.Sprintf("HostName=%s;SharedAccessKeyName=%s;SharedAccessKey=%s", h.HubName(), p.Name, p.PrimaryKey)
}

// device registers id and returns its primary key.
func (h *testHub) device(id string) string {
	h.t.Helper()
	d, err := h.Registry().Create(context.Background(), registry.Device{DeviceID: id}, "test")
	if err != nil {
		h.t.Fatal(err)
	}
	return d.Authentication.SymmetricKey.PrimaryKey
}

// connect opens an MQTT/TLS session as device id (clean session).
func (h *testHub) connect(id, key string) *mqttclient.Conn {
	h.t.Helper()
	return h.connectUntil(id, key, time.Now().Add(time.Hour))
}

// connectUntil connects as device id with a SAS token that expires at exp.
func (h *testHub) connectUntil(id, key string, exp time.Time) *mqttclient.Conn {
	h.t.Helper()
	tok, err := sas.Sign(h.HubName()+"/devices/"+id, key, "", exp)
	if err != nil {
		h.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(h.caPEM)
	d := mqttclient.Dialer{Addr: h.MQTTAddr(), TLS: &tls.Config{RootCAs: pool, ServerName: "localhost"}, Timeout: 10 * time.Second}
	c, err := d.Dial(context.Background(), mqttclient.ConnectPacket(id, h.HubName()+"/"+id+"/?api-version=2021-04-12", tok, 60, true))
	if err != nil {
		h.t.Fatalf("connect %s: %v", id, err)
	}
	return c
}

// request sends one HTTPS request to the hub with the given headers.
func (h *testHub) request(method, path, body string, headers map[string]string) (int, string) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// owner calls the API with an owner SAS token.
func (h *testHub) owner(method, path string, body any) (int, []byte) {
	h.t.Helper()
	p, _ := h.Registry().Policy("iothubowner")
	tok, _ := sas.Sign(h.HubName(), p.PrimaryKey, p.Name, time.Now().Add(time.Hour))
	raw, _ := json.Marshal(body)
	if body == nil {
		raw = nil
	}
	status, text := h.request(method, path, string(raw), map[string]string{"Authorization": tok, "Content-Type": "application/json"})
	return status, []byte(text)
}

// eventually polls cond until it returns nil.
func eventually(t *testing.T, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// flakyReceiver is a webhook endpoint that validates subscriptions and
// fails every delivery (500) until healed.
type flakyReceiver struct {
	healed atomic.Bool
	mu     sync.Mutex
	got    []map[string]any
}

func (rc *flakyReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var batch []map[string]any
	if err := json.Unmarshal(body, &batch); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	if r.Header.Get("aeg-event-type") == "SubscriptionValidation" {
		code := batch[0]["data"].(map[string]any)["validationCode"]
		_ = json.NewEncoder(w).Encode(map[string]any{"validationResponse": code})
		return
	}
	if !rc.healed.Load() {
		http.Error(w, "receiver down", http.StatusInternalServerError)
		return
	}
	rc.mu.Lock()
	rc.got = append(rc.got, batch...)
	rc.mu.Unlock()
}

func (rc *flakyReceiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}
