package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tether-hub/tether/bench/internal/stormrun"
	"github.com/tether-hub/tether/internal/sas"
)

var (
	childMu  sync.Mutex
	children = map[*exec.Cmd]bool{}
)

// killChildren SIGKILLs the process group of every child still running.
func killChildren() {
	childMu.Lock()
	defer childMu.Unlock()
	for c := range children {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
}

// hub is the `tether serve --dev` child process.
type hub struct {
	cmd                          *exec.Cmd
	done                         chan struct{}
	dataDir, logPath             string
	mqttAddr, httpsAddr, tcpAddr string
	debugAddr                    string // /debug/pprof when -profile
}

// capture saves the hub's CPU profile and execution trace over d into
// dir/<name>-cpu.pprof and dir/<name>.trace, and its allocation profile
// before and after (<name>-allocs-start/-end.pprof; compare with pprof
// -base). Best effort, in the background; wait on the returned channel.
func (h *hub) capture(dir, name string, d time.Duration) <-chan struct{} {
	done := make(chan struct{})
	if h.debugAddr == "" {
		close(done)
		return done
	}
	get := func(path, file string) {
		resp, err := http.Get("http://" + h.debugAddr + path)
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
		defer get("/debug/pprof/allocs", name+"-allocs-end.pprof")
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); get(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), name+"-cpu.pprof") }()
		go func() {
			defer wg.Done()
			get(fmt.Sprintf("/debug/pprof/trace?seconds=%d", min(secs, 5)), name+".trace")
		}()
		wg.Wait()
		log.Printf("hub profile and trace of %s in %s", name, dir)
	}()
	return done
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func startHub(ctx context.Context, bin, dataDir, logPath string, debug bool) (*hub, error) {
	p, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	h := &hub{dataDir: dataDir, logPath: logPath, done: make(chan struct{}),
		mqttAddr:  fmt.Sprintf("127.0.0.1:%d", p[0]),
		httpsAddr: fmt.Sprintf("127.0.0.1:%d", p[1]),
		tcpAddr:   fmt.Sprintf("127.0.0.1:%d", p[2]),
	}
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--dev", "--data-dir", dataDir, "--log-level", "info",
		"--mqtt-addr", h.mqttAddr, "--https-addr", h.httpsAddr, "--tcp-addr", h.tcpAddr}
	if debug {
		h.debugAddr = fmt.Sprintf("127.0.0.1:%d", p[3])
		args = append(args, "--debug-addr", h.debugAddr)
	}
	h.cmd = exec.Command(bin, args...)
	h.cmd.Stdout, h.cmd.Stderr = lf, lf
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := h.cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	childMu.Lock()
	children[h.cmd] = true
	childMu.Unlock()
	go func() {
		_ = h.cmd.Wait()
		lf.Close()
		childMu.Lock()
		delete(children, h.cmd)
		childMu.Unlock()
		close(h.done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for _, a := range []string{h.tcpAddr, h.httpsAddr} {
		for {
			select {
			case <-h.done:
				return nil, fmt.Errorf("tether exited before listening (log %s)", logPath)
			default:
			}
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				h.stop(5 * time.Second)
				return nil, fmt.Errorf("tether not listening on %s (log %s)", a, logPath)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return h, nil
}

func (h *hub) pid() int { return h.cmd.Process.Pid }

// stop: SIGTERM, then SIGKILL of the process group after grace.
func (h *hub) stop(grace time.Duration) {
	select {
	case <-h.done:
		return
	default:
	}
	_ = syscall.Kill(-h.pid(), syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(grace):
		_ = syscall.Kill(-h.pid(), syscall.SIGKILL)
		<-h.done
	}
}

// problems returns the hub log's WARN and ERROR lines (at most 20).
func (h *hub) problems() []string {
	b, _ := os.ReadFile(h.logPath)
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
type hubAPI struct {
	base string
	cs   sas.ConnectionString
	http *http.Client
}

func newHubAPI(ctx context.Context, dataDir, httpsAddr string) (*hubAPI, error) {
	read := func(name string) ([]byte, error) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			b, err := os.ReadFile(filepath.Join(dataDir, name))
			if err == nil && len(bytes.TrimSpace(b)) > 0 {
				return b, nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return nil, fmt.Errorf("dev hub did not write %s: %v", name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	raw, err := read("owner-connection-string")
	if err != nil {
		return nil, err
	}
	cs, err := sas.ParseConnectionString(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, err
	}
	ca, err := read("ca.pem")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("ca.pem holds no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 64}
	return &hubAPI{base: "https://" + httpsAddr, cs: cs, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}, nil
}

func (a *hubAPI) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	tok, err := sas.Sign(a.cs.HostName, a.cs.SharedAccessKey, a.cs.SharedAccessKeyName, time.Now().Add(time.Hour))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, out, err
}

// createDevices registers the fleet's devices with their derived keys.
func (a *hubAPI) createDevices(ctx context.Context, devs []*device, par int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(devs) {
					return
				}
				d := devs[i]
				body := map[string]any{
					"deviceId": d.id,
					"authentication": map[string]any{"type": "sas",
						"symmetricKey": map[string]string{"primaryKey": d.key, "secondaryKey": d.key2}},
				}
				path := "/devices/" + url.PathEscape(d.id) + "?api-version=" + stormrun.APIVersion
				var code int
				var msg []byte
				var err error
				for attempt := range 5 {
					code, msg, err = a.do(ctx, http.MethodPut, path, body)
					if err == nil && code < 500 && code != http.StatusTooManyRequests {
						break
					}
					time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
				}
				if err != nil || (code != http.StatusOK && code != http.StatusCreated) {
					once.Do(func() {
						first = fmt.Errorf("PUT %s: %d %s %v", path, code, bytes.TrimSpace(msg), err)
						cancel()
					})
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// createSubscription creates the "eventlat" webhook subscription and
// checks that the handshake validated it.
func (a *hubAPI) createSubscription(ctx context.Context, endpoint string, batch int) error {
	code, body, err := a.do(ctx, http.MethodPost, "/api/v1/subscriptions", map[string]any{
		"name": "eventlat",
		"destination": map[string]any{"endpointType": "WebHook",
			"properties": map[string]any{"endpointUrl": endpoint, "maxEventsPerBatch": batch}},
		"filter": map[string]any{"includedEventTypes": []string{
			"Microsoft.Devices.DeviceConnected", "Microsoft.Devices.DeviceDisconnected"}},
	})
	if err != nil {
		return err
	}
	var sub struct {
		ProvisioningState string `json:"provisioningState"`
	}
	_ = json.Unmarshal(body, &sub)
	if code != http.StatusCreated || sub.ProvisioningState != "Succeeded" {
		return fmt.Errorf("create subscription: %d %s", code, body)
	}
	return nil
}
