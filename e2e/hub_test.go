package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/sas"
)

// apiVersion is the IoT Hub API version of REST calls and MQTT usernames.
const apiVersion = "2021-04-12"

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
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
		bin := filepath.Join(dir, "tether")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/tether")
		cmd.Dir = ".." // the module root: this package is e2e/
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/tether: %v\n%s", err, out)
			return
		}
		buildBin = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

var buildDirs []string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range buildDirs {
		_ = os.RemoveAll(d)
	}
	os.Exit(code)
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
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
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// hubProc is a `tether serve --dev` child process. Restarting it keeps the
// data dir and the addresses.
type hubProc struct {
	t                            *testing.T
	bin, dir, logPath            string
	mqttAddr, httpsAddr, tcpAddr string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	runs int
}

func newHub(t *testing.T, bin, dir string) *hubProc {
	p := freePorts(t, 3)
	h := &hubProc{
		t: t, bin: bin, dir: dir, logPath: filepath.Join(dir, "..", filepath.Base(dir)+".log"),
		mqttAddr:  fmt.Sprintf("127.0.0.1:%d", p[0]),
		httpsAddr: fmt.Sprintf("127.0.0.1:%d", p[1]),
		tcpAddr:   fmt.Sprintf("127.0.0.1:%d", p[2]),
	}
	t.Cleanup(func() {
		if h.running() {
			h.kill()
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
	if err := h.startE(); err != nil {
		h.dumpLog(40)
		h.t.Fatal(err)
	}
}

func (h *hubProc) startE() error {
	lf, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	h.runs++
	fmt.Fprintf(lf, "==== start %d at %s ====\n", h.runs, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(h.bin, "serve", "--dev", "--data-dir", h.dir,
		"--mqtt-addr", h.mqttAddr, "--https-addr", h.httpsAddr, "--tcp-addr", h.tcpAddr)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		lf.Close()
		close(done)
	}()
	h.mu.Lock()
	h.cmd, h.done = cmd, done
	h.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for _, addr := range []string{h.tcpAddr, h.httpsAddr} {
		for {
			select {
			case <-done:
				return fmt.Errorf("tether exited before listening on %s: %v", addr, cmd.ProcessState)
			default:
			}
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("tether not listening on %s after 60 s", addr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

func (h *hubProc) running() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done == nil {
		return false
	}
	select {
	case <-h.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL to the hub process (only that pid) and waits for it.
func (h *hubProc) kill() {
	h.mu.Lock()
	cmd, done := h.cmd, h.done
	h.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// stop sends SIGTERM and waits up to grace; then SIGKILL. It reports
// whether the hub exited by itself with status 0.
func (h *hubProc) stop(grace time.Duration) bool {
	h.mu.Lock()
	cmd, done := h.cmd, h.done
	h.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return cmd.ProcessState.Success()
	case <-time.After(grace):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return false
	}
}

func (h *hubProc) dumpLog(lines int) {
	b, err := os.ReadFile(h.logPath)
	if err != nil {
		return
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	h.t.Logf("last %d lines of the hub's log %s:\n%s", len(ls), h.logPath, strings.Join(ls, "\n"))
}

// logLines returns the hub log's lines that contain any of subs.
func (h *hubProc) logLines(subs ...string) []string {
	b, _ := os.ReadFile(h.logPath)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		for _, s := range subs {
			if strings.Contains(l, s) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// api is the hub's HTTPS API with the owner policy of the dev data dir.
type api struct {
	base string
	cs   sas.ConnectionString
	http *http.Client
}

// newAPI reads the owner connection string and CA the dev hub wrote.
func (h *hubProc) api() *api {
	h.t.Helper()
	raw, err := os.ReadFile(filepath.Join(h.dir, "owner-connection-string"))
	if err != nil {
		h.t.Fatal(err)
	}
	cs, err := sas.ParseConnectionString(strings.TrimSpace(string(raw)))
	if err != nil {
		h.t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(h.dir, "ca.pem"))
	if err != nil {
		h.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		h.t.Fatal("ca.pem holds no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 64}
	return &api{base: "https://" + h.httpsAddr, cs: cs, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (a *api) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
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
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// createDevices registers the devices with their keys, par at a time.
func (a *api) createDevices(ctx context.Context, devs []*device, par int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, par)
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(devs) || ctx.Err() != nil {
					return
				}
				d := devs[i]
				body := map[string]any{
					"deviceId": d.id,
					"authentication": map[string]any{
						"type":         "sas",
						"symmetricKey": map[string]string{"primaryKey": d.key, "secondaryKey": d.key2},
					},
				}
				path := "/devices/" + url.PathEscape(d.id) + "?api-version=" + apiVersion
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
					errs <- fmt.Errorf("PUT %s: %d %s %v", path, code, bytes.TrimSpace(msg), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(<-errs)
}

// createSubscription creates a webhook subscription and returns the
// hub's answer (status and body).
func (a *api) createSubscription(ctx context.Context, def map[string]any) (int, map[string]any, error) {
	code, body, err := a.do(ctx, http.MethodPost, "/api/v1/subscriptions", def)
	if err != nil {
		return 0, nil, err
	}
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	if m == nil {
		m = map[string]any{"raw": string(body)}
	}
	return code, m, nil
}

// logRecord is the part of a Connections log record the tests use.
type logRecord struct {
	DeviceID       string `json:"DeviceId"`
	OperationName  string `json:"OperationName"`
	SequenceNumber string `json:"SequenceNumber"`
	Category       string `json:"Category"`
}

// connectionLogs returns a device's Connections log records.
func (a *api) connectionLogs(ctx context.Context, deviceID string) ([]logRecord, error) {
	q := url.Values{"device": {deviceID}, "category": {"Connections"}, "limit": {"10000"}}
	code, body, err := a.do(ctx, http.MethodGet, "/api/v1/logs?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET logs of %s: %d %s", deviceID, code, body)
	}
	var resp struct {
		Records []logRecord `json:"records"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, err
	}
	return resp.Records, nil
}
