package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-hub/tether/bench/internal/stormrun"
	"github.com/tether-hub/tether/internal/sas"
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
type hubAPI struct {
	base string
	cs   sas.ConnectionString
	http *http.Client
}

// newHubAPI reads what the dev hub wrote into its data dir: the owner
// connection string, its CA and the API URL (waiting for them up to 30 s).
func newHubAPI(ctx context.Context, dataDir, fallbackURL string) (*hubAPI, error) {
	read := func(name string) (string, error) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			b, err := os.ReadFile(filepath.Join(dataDir, name))
			if err == nil && len(bytes.TrimSpace(b)) > 0 {
				return strings.TrimSpace(string(b)), nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return "", fmt.Errorf("dev hub did not write %s: %v", name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	raw, err := read("owner-connection-string")
	if err != nil {
		return nil, err
	}
	cs, err := sas.ParseConnectionString(raw)
	if err != nil {
		return nil, err
	}
	caPEM, err := read("ca.pem")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		return nil, fmt.Errorf("%s/ca.pem holds no certificate", dataDir)
	}
	base := fallbackURL
	if u, err := read("api-url"); err == nil {
		base = u
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		MaxIdleConnsPerHost: 64,
	}
	return &hubAPI{base: strings.TrimRight(base, "/"), cs: cs, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}, nil
}

func (h *hubAPI) do(ctx context.Context, method, path string, body any) (int, string, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, rd)
	if err != nil {
		return 0, "", err
	}
	tok, err := sas.Sign(h.cs.HostName, h.cs.SharedAccessKey, h.cs.SharedAccessKeyName, time.Now().Add(time.Hour))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(msg), nil
}

func devicePath(id string) string {
	return "/devices/" + url.PathEscape(id) + "?api-version=" + stormrun.APIVersion
}

// deviceExists reports whether the registry has device id.
func (h *hubAPI) deviceExists(ctx context.Context, id string) (bool, error) {
	code, msg, err := h.do(ctx, http.MethodGet, devicePath(id), nil)
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

// createDevices registers bench-0…bench-(n-1) with their derived keys,
// par requests at a time; devices that already exist count as done.
func (h *hubAPI) createDevices(ctx context.Context, n, par int, seed string) error {
	start := time.Now()
	var next, created, existed, failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				log.Printf("  devices: %d created, %d existed of %d (%.0f/s)", created.Load(), existed.Load(), n,
					float64(created.Load()+existed.Load())/time.Since(start).Seconds())
			}
		}
	}()
	var wg sync.WaitGroup
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				id := stormrun.DeviceID(i)
				k1, k2 := stormrun.DeviceKeys(seed, id)
				body := map[string]any{
					"deviceId": id,
					"authentication": map[string]any{
						"type":         "sas",
						"symmetricKey": map[string]string{"primaryKey": k1, "secondaryKey": k2},
					},
				}
				var code int
				var msg string
				var err error
				for attempt := range 5 {
					code, msg, err = h.do(ctx, http.MethodPut, devicePath(id), body)
					if err == nil && code < 500 && code != http.StatusTooManyRequests {
						break
					}
					time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
				}
				switch {
				case err == nil && (code == http.StatusOK || code == http.StatusCreated):
					created.Add(1)
				case err == nil && (code == http.StatusConflict || code == http.StatusPreconditionFailed):
					existed.Add(1)
				default:
					failed.Add(1)
					errOnce.Do(func() {
						firstErr = fmt.Errorf("PUT device %s: status %d %s %v", id, code, strings.TrimSpace(msg), err)
						cancel()
					})
				}
			}
		}()
	}
	wg.Wait()
	close(stopProgress)
	el := time.Since(start)
	log.Printf("  devices: %d created, %d existed, %d failed in %.1fs (%.0f/s)", created.Load(), existed.Load(), failed.Load(),
		el.Seconds(), float64(created.Load()+existed.Load())/el.Seconds())
	return firstErr
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
