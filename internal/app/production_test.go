package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/certs"
	"github.com/tether-hub/tether/internal/datadir"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/sas"
)

// testCA issues server certificates for localhost from one CA, as an
// operator's ACME client or cert-manager would renew them.
type testCA struct {
	t   testing.TB
	dir string // the CA (certs.EnsureDev's files)
}

func newTestCA(t testing.TB) *testCA {
	return &testCA{t: t, dir: t.TempDir()}
}

func (ca *testCA) caFile() string { return filepath.Join(ca.dir, certs.CAFile) }

// issue writes a fresh certificate and key (new serial, new key) to
// certFile and keyFile and returns the certificate's serial.
func (ca *testCA) issue(certFile, keyFile string) *big.Int {
	ca.t.Helper()
	os.Remove(filepath.Join(ca.dir, certs.ServerFile))
	os.Remove(filepath.Join(ca.dir, certs.ServerKeyFile))
	c, err := certs.EnsureDev(ca.dir, []string{"localhost", "127.0.0.1"})
	if err != nil {
		ca.t.Fatal(err)
	}
	for src, dst := range map[string]string{certs.ServerFile: certFile, certs.ServerKeyFile: keyFile} {
		b, err := os.ReadFile(filepath.Join(ca.dir, src))
		if err != nil {
			ca.t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			ca.t.Fatal(err)
		}
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		ca.t.Fatal(err)
	}
	return leaf.SerialNumber
}

// lockedBuffer collects a hub's log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// prodHub starts a hub without --dev on certificate files of ca, logging
// into logs (may be nil).
func startProdHub(t *testing.T, dir string, ca *testCA, certFile, keyFile string, logs io.Writer, configure func(*app.Config)) *hub {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := startHubLog(t, dir, func(c *app.Config) {
		c.Dev = false
		c.TLSCertFile, c.TLSKeyFile = certFile, keyFile
		if configure != nil {
			configure(c)
		}
	}, log)
	h.caFile = ca.caFile()
	return h
}

// servedSerial is the serial of the certificate addr presents to a new
// TLS connection.
func servedSerial(t *testing.T, h *hub, addr string) *big.Int {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, h.tlsConfig())
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

// On the first start outside --dev the owner connection string lands in
// the data dir, owner-readable only, and the log says where but never the
// key; the file follows key renewals while it exists and is not written
// again once deleted.
func TestBootstrapFileOutsideDev(t *testing.T) {
	ca := newTestCA(t)
	certDir := t.TempDir()
	certFile, keyFile := filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key")
	ca.issue(certFile, keyFile)
	dir := t.TempDir()
	logs := &lockedBuffer{}
	h := startProdHub(t, dir, ca, certFile, keyFile, logs, nil)

	path := filepath.Join(dir, datadir.BootstrapFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no bootstrap file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("bootstrap file mode %v", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	cs, err := sas.ParseConnectionString(strings.TrimSpace(string(b)))
	owner, _ := h.Registry().Policy("iothubowner")
	if err != nil || cs.SharedAccessKeyName != "iothubowner" || cs.SharedAccessKey != owner.PrimaryKey || cs.HostName != "localhost" {
		t.Fatalf("bootstrap file %q: %v", b, err)
	}
	if status, body := h.api("GET", "/devices?api-version=2021-04-12", nil); status != 200 {
		t.Fatalf("the bootstrap credentials do not work: %d %s", status, body)
	}
	if u, _ := os.ReadFile(filepath.Join(dir, datadir.APIURLFile)); strings.TrimSpace(string(u)) != "https://localhost:"+port(h.HTTPSAddr()) {
		t.Errorf("api-url %q", u)
	}
	if !strings.Contains(logs.String(), path) {
		t.Errorf("the log does not say where the file is:\n%s", logs)
	}

	// Renewing the owner's primary key rewrites the file.
	renewed, err := h.Registry().RenewPolicyKey(context.Background(), "iothubowner", registry.PrimarySlot, "test")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	if !strings.Contains(string(b), renewed.PrimaryKey) {
		t.Fatalf("bootstrap file not updated after renew-key: %q", b)
	}
	for _, key := range []string{owner.PrimaryKey, owner.SecondaryKey, renewed.PrimaryKey} {
		if strings.Contains(logs.String(), key) {
			t.Fatal("a policy key is in the hub log")
		}
	}
	h.stop()

	// A restart neither rewrites a deleted file nor writes a new one.
	os.Remove(path)
	h2 := startProdHub(t, dir, ca, certFile, keyFile, nil, nil)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("bootstrap file came back after a restart: %v", err)
	}
	if p, _ := h2.Registry().Policy("iothubowner"); p != renewed {
		t.Fatalf("restart changed the owner's keys")
	}
}

func port(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

// The running hub's admin socket serves the API without a token, to the
// hub's own user; a second hub on the same data dir is refused.
func TestLocalAdminSocketAndLock(t *testing.T) {
	dir := t.TempDir()
	h := startHubIn(t, dir)
	sock := filepath.Join(dir, datadir.SocketFile)
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", fi, err)
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Post("http://tether/api/v1/policies/service/renew-key", "application/json", strings.NewReader(`{"key":"primary"}`))
	if err != nil {
		t.Fatal(err)
	}
	var p registry.Policy
	json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if cur, _ := h.Registry().Policy("service"); resp.StatusCode != 200 || p != cur {
		t.Fatalf("renew over the socket: %d %+v", resp.StatusCode, p)
	}

	a2, _ := app.New(app.Config{DataDir: dir, Dev: true, MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	err = a2.Start(context.Background())
	if !errors.Is(err, datadir.ErrLocked) || !strings.Contains(err.Error(), "tether serve") {
		t.Fatalf("second hub on the data dir: %v", err)
	}
	h.stop()
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind after stop: %v", err)
	}
}

// A certificate swapped under a running hub is served to new connections
// (after SIGHUP, and by itself when the files change) while the device
// connected before stays connected and keeps working.
func TestCertificateReloadKeepsDevicesConnected(t *testing.T) {
	ca := newTestCA(t)
	certDir := t.TempDir()
	certFile, keyFile := filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key")
	first := ca.issue(certFile, keyFile)
	h := startProdHub(t, t.TempDir(), ca, certFile, keyFile, nil, func(c *app.Config) { c.CertCheckEvery = 50 * time.Millisecond })
	for _, addr := range []string{h.MQTTAddr(), h.HTTPSAddr()} {
		if got := servedSerial(t, h, addr); got.Cmp(first) != 0 {
			t.Fatalf("%s serves %x, want %x", addr, got, first)
		}
	}
	key := h.device("steady")
	dev, rc := h.v3("steady", username("steady"), h.token("steady", key, time.Hour))
	if rc != 0 {
		t.Fatalf("CONNACK %d", rc)
	}
	publish := func() {
		t.Helper()
		tok := dev.Publish("devices/steady/messages/events/", 1, false, "still here")
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish on the old connection: %v", tok.Error())
		}
	}
	publish()

	// SIGHUP path.
	second := ca.issue(certFile, keyFile)
	// (The poll may have been first; either way the new one serves.)
	if _, err := h.ReloadCertificate(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	for _, addr := range []string{h.MQTTAddr(), h.HTTPSAddr()} {
		if got := servedSerial(t, h, addr); got.Cmp(second) != 0 {
			t.Fatalf("after reload %s serves %x, want %x", addr, got, second)
		}
	}
	if changed, err := h.ReloadCertificate(); err != nil || changed {
		t.Errorf("reload of unchanged files: %v %v", changed, err)
	}
	publish()

	// File-change path: an ACME client renews; the poll picks it up.
	third := ca.issue(certFile, keyFile)
	eventually(t, 10*time.Second, func() error {
		if got := servedSerial(t, h, h.MQTTAddr()); got.Cmp(third) != 0 {
			return errorf("still serving %x, want %x", got, third)
		}
		return nil
	})
	publish()

	// A certificate without its key (half-way through a renewal) is not
	// taken; the one in service stays.
	otherDir := t.TempDir()
	ca.issue(filepath.Join(otherDir, "c"), filepath.Join(otherDir, "k"))
	newCert, _ := os.ReadFile(filepath.Join(otherDir, "c"))
	if err := os.WriteFile(certFile, newCert, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ReloadCertificate(); err == nil || !strings.Contains(err.Error(), "previous one stays in service") {
		t.Fatalf("mismatched pair: %v", err)
	}
	if got := servedSerial(t, h, h.HTTPSAddr()); got.Cmp(third) != 0 {
		t.Fatalf("a mismatched pair replaced the certificate: %x", got)
	}
	publish()

	if !dev.IsConnectionOpen() {
		t.Fatal("the device connected before the swaps was dropped")
	}
	for _, ev := range h.events.forDevice("steady") {
		if ev.Kind != presence.Connected {
			t.Fatalf("the device was disconnected: %s", describe(h.events.forDevice("steady")))
		}
	}
	_, text := h.scrape("")
	m := parseMetrics(text)
	leaf := servedLeaf(t, h)
	if got := m[`tether_tls_certificate_expiry_timestamp_seconds{source="file"}`]; got != float64(leaf.NotAfter.Unix()) {
		t.Errorf("expiry metric %v, want %d", got, leaf.NotAfter.Unix())
	}
	if m[`tether_tls_certificate_reloads_total{result="success"}`] != 2 || m[`tether_tls_certificate_reloads_total{result="failure"}`] < 1 {
		t.Errorf("reload counters: %v", m)
	}
}

func servedLeaf(t *testing.T, h *hub) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", h.HTTPSAddr(), h.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// parseMetrics reads the text exposition's samples (name{labels} value).
func parseMetrics(text string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// A data dir as the previous release left it (format 0: no FORMAT, open
// permissions, and outside --dev no owner connection string) is migrated
// by today's hub on start, and everything in it is readable; a data dir of
// a newer format is refused with what to do.
func TestOldFormatDataDirIsMigrated(t *testing.T) {
	dir := t.TempDir()
	// Data written by the hub: a device, its connection in the log, a
	// diagnostic setting.
	old := startHubIn(t, dir)
	key := old.device("legacy-1")
	c, rc := old.v3("legacy-1", username("legacy-1"), old.token("legacy-1", key, time.Hour))
	if rc != 0 {
		t.Fatalf("CONNACK %d", rc)
	}
	c.Disconnect(100)
	logs := old.waitLogs("legacy-1", 2)
	if status, body := old.api("PUT", "/api/v1/diagnostic-settings/keep", map[string]any{
		"categories": []string{"Connections"}, "archive": map[string]any{"retentionDays": 3},
	}); status != 201 {
		t.Fatalf("diagnostic setting: %d %s", status, body)
	}
	owner, _ := old.Registry().Policy("iothubowner")
	old.stop()

	// The previous layout: no FORMAT, no lock file; a production data dir
	// had no owner connection string or api-url; the operator's
	// directory was 0755 and SQLite made its files 0644.
	for _, name := range []string{datadir.FormatFile, datadir.LockFile, datadir.BootstrapFile, datadir.APIURLFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Join(dir, app.LogFile), 0o644)
	if info, fresh, err := datadir.ReadFormat(dir); err != nil || fresh || info.Format != 0 {
		t.Fatalf("fixture is not format 0: %+v %v %v", info, fresh, err)
	}

	ca := newTestCA(t)
	certDir := t.TempDir()
	certFile, keyFile := filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key")
	ca.issue(certFile, keyFile)
	out := &lockedBuffer{}
	h := startProdHub(t, dir, ca, certFile, keyFile, out, nil)

	if info, _, _ := datadir.ReadFormat(dir); info.Format != datadir.Current {
		t.Errorf("format after start: %d", info.Format)
	}
	if !strings.Contains(out.String(), "data dir migrated") {
		t.Errorf("no migration in the log:\n%s", out)
	}
	for _, p := range []string{dir, filepath.Join(dir, app.LogFile)} {
		if fi, _ := os.Stat(p); fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is still %v", p, fi.Mode().Perm())
		}
	}
	// The keys were never shown by the previous release: the owner's
	// (unchanged) connection string is handed out now.
	b, err := os.ReadFile(filepath.Join(dir, datadir.BootstrapFile))
	if err != nil || !strings.Contains(string(b), owner.PrimaryKey) {
		t.Fatalf("bootstrap after the upgrade: %q %v", b, err)
	}
	if d, ok := h.Registry().Device("legacy-1"); !ok || d.Authentication.SymmetricKey.PrimaryKey != key {
		t.Fatalf("device after migration: %+v %v", d, ok)
	}
	got := h.waitLogs("legacy-1", 2)
	if len(got) != len(logs) || got[0].ItemID != logs[0].ItemID || got[1].ItemID != logs[1].ItemID {
		t.Fatalf("log records after migration: %d, before %d", len(got), len(logs))
	}
	if status, body := h.api("GET", "/api/v1/diagnostic-settings/keep", nil); status != 200 {
		t.Fatalf("diagnostic setting after migration: %d %s", status, body)
	}
	// The device still connects with its key.
	if _, rc := h.v3("legacy-1", username("legacy-1"), h.token("legacy-1", key, time.Hour)); rc != 0 {
		t.Fatalf("CONNACK after migration %d", rc)
	}
	h.stop()

	os.WriteFile(filepath.Join(dir, datadir.FormatFile), []byte(`{"format":2,"writtenBy":"tether v2.0.0"}`), 0o600)
	a, _ := app.New(app.Config{DataDir: dir, TLSCertFile: certFile, TLSKeyFile: keyFile, MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	err = a.Start(context.Background())
	if !errors.Is(err, datadir.ErrTooNew) || !strings.Contains(err.Error(), "tether v2.0.0") {
		t.Fatalf("newer data dir: %v", err)
	}
}

// A device that authenticates with a policy token (skn) is refused once
// that key is renewed, and the Connections log records the refusal; the
// policy's other key goes on working.
func TestRenewedPolicyKeyRefusesDevices(t *testing.T) {
	h := startHub(t)
	h.device("fleet-1")
	dp, _ := h.Registry().Policy("device")
	policyToken := func(key string) string {
		tok, err := sas.Sign(sas.DeviceResource("localhost", "fleet-1"), key, "device", time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	oldPrimary := policyToken(dp.PrimaryKey)
	c, rc := h.v3("fleet-1", username("fleet-1"), oldPrimary)
	if rc != 0 {
		t.Fatalf("policy token before the renewal: CONNACK %d", rc)
	}
	c.Disconnect(100)
	if _, err := h.Registry().RenewPolicyKey(context.Background(), "device", registry.PrimarySlot, "test"); err != nil {
		t.Fatal(err)
	}
	if _, rc := h.v3("fleet-1", username("fleet-1"), oldPrimary); rc != 5 {
		t.Fatalf("renewed key: CONNACK %d, want 5 (not authorized)", rc)
	}
	if _, rc := h.v3("fleet-1", username("fleet-1"), policyToken(dp.SecondaryKey)); rc != 0 {
		t.Fatalf("the policy's secondary key after renewing the primary: CONNACK %d", rc)
	}
	recs := h.waitLogs("fleet-1", 4) // connect, disconnect, refused connect, connect
	var refused bool
	for _, r := range recs {
		if r.OperationName == "deviceConnect" && r.ResultType == "401003" && strings.Contains(r.Properties, "signature") {
			refused = true
		}
	}
	if !refused {
		var lines []string
		for _, r := range recs {
			lines = append(lines, r.OperationName+" "+r.ResultType+" "+r.Properties)
		}
		t.Fatalf("no refused deviceConnect record:\n%s", strings.Join(lines, "\n"))
	}
}

// Two hub nodes on one NATS: a key renewed on one is refused by the
// other within moments (the policy bucket is watched), and its new key
// accepted.
func TestPolicyRenewalReachesOtherNodes(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown) // after the hubs' cleanups
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	a := startHubWith(t, t.TempDir(), func(c *app.Config) { c.NATSURL = ns.ClientURL() })
	// The second node without the harness: its goroutine check expects
	// one hub at a time. Its cleanup runs before the first node's.
	b, err := app.New(app.Config{DataDir: t.TempDir(), Dev: true, NATSURL: ns.ClientURL(), MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		b.Stop(ctx)
	})
	sign := func(key string) string {
		tok, err := sas.Sign("localhost", key, "service", time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	before, _ := b.Registry().Policy("service")
	if _, err := b.Registry().Authorize(sign(before.PrimaryKey), registry.ServiceConnect, time.Now()); err != nil {
		t.Fatal(err)
	}
	renewed, err := a.Registry().RenewPolicyKey(context.Background(), "service", registry.PrimarySlot, "test")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		if _, err := b.Registry().Authorize(sign(before.PrimaryKey), registry.ServiceConnect, time.Now()); err == nil {
			return errorf("the other node still accepts the renewed key")
		}
		if _, err := b.Registry().Authorize(sign(renewed.PrimaryKey), registry.ServiceConnect, time.Now()); err != nil {
			return errorf("the other node refuses the new key: %v", err)
		}
		return nil
	})
}
