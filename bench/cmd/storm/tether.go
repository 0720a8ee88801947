package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tether-hub/tether/bench/internal/stormrun"
	"github.com/tether-hub/tether/internal/hubclient"
)

// broker is one started broker process and where it listens.
type broker struct {
	*child
	tcpAddr, tlsAddr, httpsAddr string
	debugAddr                   string // /debug/pprof, "" if the broker has none
}

// startTether starts `tether serve --dev` on fresh ports with dataDir and
// waits until its MQTT (TLS and plain) and HTTPS listeners accept. With
// debug it also serves /debug/pprof (--debug-addr).
func startTether(ctx context.Context, bin, dataDir, logPath string, debug bool) (*broker, error) {
	p, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	b := &broker{
		tlsAddr:   fmt.Sprintf("127.0.0.1:%d", p[0]),
		httpsAddr: fmt.Sprintf("127.0.0.1:%d", p[1]),
		tcpAddr:   fmt.Sprintf("127.0.0.1:%d", p[2]),
	}
	args := []string{"serve", "--dev", "--data-dir", dataDir,
		"--mqtt-addr", b.tlsAddr, "--https-addr", b.httpsAddr, "--tcp-addr", b.tcpAddr}
	if debug {
		b.debugAddr = fmt.Sprintf("127.0.0.1:%d", p[3])
		args = append(args, "--debug-addr", b.debugAddr)
	}
	b.child, err = startChild("tether", logPath, bin, args...)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := waitListening(wctx, b.child, nonEmpty(b.tlsAddr, b.tcpAddr, b.httpsAddr, b.debugAddr)...); err != nil {
		b.stop(15 * time.Second)
		return nil, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	return b, nil
}

// startBare starts bench/cmd/baremochi on fresh ports.
func startBare(ctx context.Context, bin, certFile, keyFile, logPath string) (*broker, error) {
	p, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	b := &broker{tcpAddr: fmt.Sprintf("127.0.0.1:%d", p[0]), tlsAddr: fmt.Sprintf("127.0.0.1:%d", p[1]), debugAddr: fmt.Sprintf("127.0.0.1:%d", p[2])}
	b.child, err = startChild("baremochi", logPath, bin, "-tcp", b.tcpAddr, "-tls", b.tlsAddr, "-cert", certFile, "-key", keyFile, "-debug-addr", b.debugAddr)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := waitListening(wctx, b.child, b.tcpAddr, b.tlsAddr, b.debugAddr); err != nil {
		b.stop(5 * time.Second)
		return nil, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	return b, nil
}

// hubAPI talks to the dev hub's registry REST API with the owner policy.
type hubAPI struct{ *hubclient.Client }

// newHubAPI reads what the dev hub wrote into its data dir: the owner
// connection string and its CA (waiting for them up to 30 s).
func newHubAPI(ctx context.Context, dataDir, url string) (*hubAPI, error) {
	c, err := hubclient.FromDevDir(ctx, dataDir, url, 30*time.Second)
	if err != nil {
		return nil, err
	}
	return &hubAPI{c}, nil
}

// deviceExists reports whether the registry has device id.
func (h *hubAPI) deviceExists(ctx context.Context, id string) (bool, error) {
	code, msg, err := h.Do(ctx, http.MethodGet, "/devices/"+url.PathEscape(id)+"?api-version="+stormrun.APIVersion, nil)
	switch {
	case err != nil:
		return false, err
	case code == http.StatusOK:
		return true, nil
	case code == http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("GET device %s: %d %s", id, code, msg)
}

// createDevices registers (or refreshes) bench-0…bench-(n-1) with their
// derived keys, par requests at a time, logging progress every 2 s.
func (h *hubAPI) createDevices(ctx context.Context, n, par int, seed string) error {
	start := time.Now()
	devs := make([]hubclient.Device, n)
	for i := range devs {
		id := stormrun.DeviceID(i)
		k1, k2 := stormrun.DeviceKeys(seed, id)
		devs[i] = hubclient.Device{ID: id, PrimaryKey: k1, SecondaryKey: k2}
	}
	var done atomic.Int64
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				log.Printf("  devices: %d of %d (%.0f/s)", done.Load(), n, float64(done.Load())/time.Since(start).Seconds())
			}
		}
	}()
	err := h.PutDevices(ctx, devs, par, func(d int) { done.Store(int64(d)) })
	close(stopProgress)
	el := time.Since(start)
	log.Printf("  devices: %d registered in %.1fs (%.0f/s)", done.Load(), el.Seconds(), float64(done.Load())/el.Seconds())
	return err
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// tetherHasDebugAddr reports whether this tether binary's serve command
// takes --debug-addr (older builds do not).
func tetherHasDebugAddr(ctx context.Context, bin string) bool {
	out, _ := exec.CommandContext(ctx, bin, "serve", "--help").CombinedOutput()
	return strings.Contains(string(out), "--debug-addr")
}
