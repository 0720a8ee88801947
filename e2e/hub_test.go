package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/hubclient"
	"github.com/tether-hub/tether/internal/hubproc"
)

// apiVersion is the IoT Hub API version of REST calls and MQTT usernames.
const apiVersion = hubclient.APIVersion

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
	buildDirs []string
)

// tetherBinary builds ./cmd/tether once per test binary into a temporary
// directory (removed by TestMain).
func tetherBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tether-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildDirs = append(buildDirs, dir)
		buildBin, buildErr = hubproc.Build("..", dir) // the module root: this package is e2e/
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range buildDirs {
		_ = os.RemoveAll(d)
	}
	os.Exit(code)
}

// hubProc is a `tether serve --dev` child process. Restarting it keeps the
// data dir and the addresses.
type hubProc struct {
	*hubproc.Hub
	t                            *testing.T
	dir                          string
	mqttAddr, httpsAddr, tcpAddr string
}

func newHub(t *testing.T, bin, dir string) *hubProc {
	hp, err := hubproc.New(hubproc.Options{Bin: bin, DataDir: dir,
		LogPath: filepath.Join(dir, "..", filepath.Base(dir)+".log")})
	if err != nil {
		t.Fatal(err)
	}
	h := &hubProc{Hub: hp, t: t, dir: dir, mqttAddr: hp.MQTTAddr, httpsAddr: hp.HTTPSAddr, tcpAddr: hp.TCPAddr}
	t.Cleanup(func() {
		if h.Running() {
			h.Kill()
		}
		if t.Failed() {
			h.dumpLog(60)
		}
	})
	return h
}

// start runs the hub and waits (≤ 60 s) until MQTT/TCP and the API
// accept connections. It may only be called from the test's goroutine.
func (h *hubProc) start() {
	h.t.Helper()
	if err := h.Start(context.Background()); err != nil {
		h.dumpLog(40)
		h.t.Fatal(err)
	}
}

func (h *hubProc) kill()                            { h.Kill() }
func (h *hubProc) stop(grace time.Duration) bool    { return h.Stop(grace) }
func (h *hubProc) logLines(subs ...string) []string { return h.LogLines(subs...) }

func (h *hubProc) dumpLog(lines int) {
	h.t.Logf("last lines of the hub's log %s:\n%s", h.LogPath, joinLines(h.Tail(lines)))
}

func joinLines(ls []string) string {
	out := ""
	for _, l := range ls {
		out += l + "\n"
	}
	return out
}

// startHubWithDevices builds the binary, starts a hub on a fresh data dir
// and registers n devices named prefix-NNNN (newDevices, hub "localhost").
func startHubWithDevices(ctx context.Context, t *testing.T, phase func(string, ...any), prefix string, n int) (*hubProc, *api, []*device) {
	t.Helper()
	bin := tetherBinary(t)
	phase("built %s", bin)
	h := newHub(t, bin, filepath.Join(t.TempDir(), "data"))
	h.start()
	a := h.api()
	devs, err := newDevices("localhost", prefix, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.createDevices(ctx, devs, 32); err != nil {
		t.Fatal(err)
	}
	phase("hub up, %d devices created", n)
	return h, a, devs
}

// api is the hub's HTTPS API with the owner policy of the dev data dir.
type api struct{ *hubclient.Client }

// api reads the owner connection string and CA the dev hub wrote.
func (h *hubProc) api() *api {
	h.t.Helper()
	c, err := hubclient.FromDevDir(context.Background(), h.dir, "https://"+h.httpsAddr, 10*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	return &api{c}
}

// createDevices registers the devices with their keys, par at a time.
func (a *api) createDevices(ctx context.Context, devs []*device, par int) error {
	reg := make([]hubclient.Device, len(devs))
	for i, d := range devs {
		reg[i] = hubclient.Device{ID: d.id, PrimaryKey: d.key, SecondaryKey: d.key2}
	}
	return a.PutDevices(ctx, reg, par, nil)
}

// createSubscription creates a webhook subscription and returns the
// hub's answer (status and body).
func (a *api) createSubscription(ctx context.Context, def map[string]any) (int, map[string]any, error) {
	return a.CreateSubscription(ctx, def)
}

// logRecord is the part of a Connections log record the tests use.
type logRecord = hubclient.LogRecord

// connectionLogs returns a device's Connections log records.
func (a *api) connectionLogs(ctx context.Context, deviceID string) ([]logRecord, error) {
	return a.ConnectionLogs(ctx, deviceID)
}
