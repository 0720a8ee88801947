package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tether-hub/tether/internal/hubclient"
	"github.com/tether-hub/tether/internal/hubproc"
)

var (
	childMu  sync.Mutex
	children = map[*hubproc.Hub]bool{}
)

// killChildren SIGKILLs every hub still running.
func killChildren() {
	childMu.Lock()
	defer childMu.Unlock()
	for h := range children {
		h.Kill()
	}
}

// hub is the `tether serve --dev` child process.
type hub struct {
	*hubproc.Hub
	tcpAddr, httpsAddr, dataDir string
}

func startHub(ctx context.Context, bin, dataDir, logPath string, debug bool, args ...string) (*hub, error) {
	hp, err := hubproc.New(hubproc.Options{Bin: bin, DataDir: dataDir, LogPath: logPath, Debug: debug,
		Args: append([]string{"--log-level", "info"}, args...)})
	if err != nil {
		return nil, err
	}
	childMu.Lock()
	children[hp] = true
	childMu.Unlock()
	if err := hp.Start(ctx); err != nil {
		return nil, err
	}
	return &hub{Hub: hp, tcpAddr: hp.TCPAddr, httpsAddr: hp.HTTPSAddr, dataDir: dataDir}, nil
}

func (h *hub) pid() int                 { return h.Pid() }
func (h *hub) stop(grace time.Duration) { h.Stop(grace) }

// capture saves the hub's CPU profile (and, if trace, execution trace) over d into
// dir/<name>-cpu.pprof and dir/<name>.trace, and its allocation profile
// before and after (<name>-allocs-start/-end.pprof; compare with pprof
// -base). Best effort, in the background; wait on the returned channel.
func (h *hub) capture(dir, name string, d time.Duration, trace bool) <-chan struct{} {
	done := make(chan struct{})
	if h.DebugAddr == "" {
		close(done)
		return done
	}
	get := func(path, file string) {
		resp, err := http.Get("http://" + h.DebugAddr + path)
		if err != nil {
			log.Printf("profile %s: %v", path, err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(dir, file))
		if err != nil {
			return
		}
		defer f.Close()
		_, _ = io.Copy(f, resp.Body)
	}
	secs := max(1, int(d.Seconds()))
	get("/debug/pprof/allocs", name+"-allocs-start.pprof")
	go func() {
		defer close(done)
		defer get("/debug/pprof/allocs?gc=1", name+"-allocs-end.pprof") // live heap now, not at the last GC
		var wg sync.WaitGroup
		wg.Go(func() { get(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), name+"-cpu.pprof") })
		if trace {
			wg.Go(func() { get(fmt.Sprintf("/debug/pprof/trace?seconds=%d", min(secs, 5)), name+".trace") })
		}
		wg.Wait()
		log.Printf("hub profile and trace of %s in %s", name, dir)
	}()
	return done
}

// throttleLine is what the hub's "throttling" log line says of its
// connect rates: a cycle is a plain-TCP connect, so at more cycles a
// second than plain_connect_rate the connects wait their turn and the
// driver's workers queue behind them (session 11, when every connect was
// priced as a TLS one: the ~120 ms "cycle latency" at 5,000 events/s).
func (h *hub) throttleLine() string {
	for _, l := range h.LogLines("msg=throttling") {
		var parts []string
		for _, f := range []string{"connect_rate=", "plain_connect_rate=", "rate=", "connect_burst="} {
			if i := strings.Index(l, " "+f); i >= 0 {
				v := l[i+1:]
				if strings.HasPrefix(v, `rate="`) {
					if j := strings.Index(v[6:], `"`); j >= 0 {
						v = v[:6+j+1]
					}
				} else if j := strings.IndexByte(v, ' '); j >= 0 {
					v = v[:j]
				}
				parts = append(parts, v)
			}
		}
		return "throttling: " + strings.Join(parts, " ")
	}
	if l := h.LogLines("throttling is off"); len(l) > 0 {
		return "throttling: off (--no-throttle)"
	}
	return "throttling: (no line in the hub's log)"
}

// problems returns the hub log's WARN and ERROR lines (at most 20).
func (h *hub) problems() []string {
	b, _ := os.ReadFile(h.LogPath)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			out = append(out, l)
			if len(out) == 20 {
				break
			}
		}
	}
	return out
}

// hubAPI calls the dev hub's HTTPS API with the owner policy.
type hubAPI struct{ *hubclient.Client }

func newHubAPI(ctx context.Context, dataDir, httpsAddr string) (*hubAPI, error) {
	c, err := hubclient.FromDevDir(ctx, dataDir, "https://"+httpsAddr, 30*time.Second)
	if err != nil {
		return nil, err
	}
	return &hubAPI{c}, nil
}

// createDevices registers the fleet's devices with their derived keys.
func (a *hubAPI) createDevices(ctx context.Context, devs []*device, par int) error {
	reg := make([]hubclient.Device, len(devs))
	for i, d := range devs {
		reg[i] = hubclient.Device{ID: d.id, PrimaryKey: d.key, SecondaryKey: d.key2}
	}
	return a.PutDevices(ctx, reg, par, nil)
}

// createSubscription creates the "eventlat" webhook subscription and
// checks that the handshake validated it.
func (a *hubAPI) createSubscription(ctx context.Context, endpoint string, batch int) error {
	return a.Subscribe(ctx, hubclient.WebhookSubscription("eventlat", endpoint, batch))
}
