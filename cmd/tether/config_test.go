package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/tether-hub/tether/internal/certs"
	"github.com/tether-hub/tether/internal/datadir"
)

// serverCert makes a CA-signed certificate for localhost and returns the
// CA, certificate and key files.
func serverCert(t *testing.T) (ca, cert, key string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := certs.EnsureDev(dir, []string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, certs.CAFile), filepath.Join(dir, certs.ServerFile), filepath.Join(dir, certs.ServerKeyFile)
}

// deploy/tether.yaml names every flag of serve (set or commented out) and
// passes `tether config check` once its certificate paths exist.
func TestExampleConfigMirrorsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../deploy/tether.yaml")
	if err != nil {
		t.Fatal(err)
	}
	serve := newServeCmd()
	allowed := serveKey(serve)
	serve.Flags().String("data-dir", "", "")
	serve.Flags().VisitAll(func(fl *pflag.Flag) {
		if !allowed(fl) {
			return
		}
		if !regexp.MustCompile(`(?m)^(# )?` + regexp.QuoteMeta(fl.Name) + `:`).Match(b) {
			t.Errorf("deploy/tether.yaml does not mention the flag %s (as a key, or a commented-out key)", fl.Name)
		}
	})
	_, cert, key := serverCert(t)
	text := strings.NewReplacer("/etc/tether/tls/tls.crt", cert, "/etc/tether/tls/tls.key", key).Replace(string(b))
	path := filepath.Join(t.TempDir(), "tether.yaml")
	os.WriteFile(path, []byte(text), 0o600)
	h := &cliHub{}
	out, err := h.run(t, "config", "check", path)
	if err != nil || !strings.Contains(out, "OK (") {
		t.Fatalf("config check of the example: %v\n%s", err, out)
	}
}

func TestConfigCheckReportsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("mqtt_addr: x\nconnect-timeout: 30\nlog-format: xml\nhub-name: a b\ntls-cert: /nonexistent\n"), 0o600)
	h := &cliHub{}
	_, err := h.run(t, "config", "check", path)
	if err == nil {
		t.Fatal("a bad file passed")
	}
	for _, want := range []string{path + `:1:1: unknown key "mqtt_addr" (did you mean "mqtt-addr"?)`, path + `:2:18: connect-timeout: "30" is not valid`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
	// Keys and values fine, the whole not: serve's own checks, positioned.
	os.WriteFile(path, []byte("log-format: xml\n"), 0o600)
	if _, err := h.run(t, "config", "check", path); err == nil || !strings.Contains(err.Error(), path+`:1:13: log-format "xml": use text or json`) {
		t.Errorf("log-format: %v", err)
	}
	os.WriteFile(path, []byte("hub-name: a b\ntls-cert: /nonexistent\n"), 0o600)
	_, err = h.run(t, "config", "check", path)
	if err == nil || !strings.Contains(err.Error(), path+`:1:11: hub-name "a b"`) || !strings.Contains(err.Error(), path+":2:11: tls-cert and tls-key go together") {
		t.Errorf("validation: %v", err)
	}
}

// Flags win over TETHER_* variables, variables over the file, the file
// over the defaults.
func TestServeConfigPrecedence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.yaml")
	os.WriteFile(path, []byte("mqtt-addr: ':1001'\nhttps-addr: ':1002'\ntcp-addr: ':1003'\nlog-retention: 48h\n"), 0o600)
	t.Setenv("TETHER_HTTPS_ADDR", ":2002")
	t.Setenv("TETHER_TCP_ADDR", ":2003")
	set := &serveSettings{}
	serve := newServeCmdFor(set)
	if err := serve.ParseFlags([]string{"--tcp-addr", ":3003", "--config", path}); err != nil {
		t.Fatal(err)
	}
	if err := envDefaults(serve.Flags()); err != nil {
		t.Fatal(err)
	}
	if _, err := applyConfigFile(serve, set.configFile); err != nil {
		t.Fatal(err)
	}
	c := set.cfg
	if c.MQTTAddr != ":1001" || c.HTTPSAddr != ":2002" || c.TCPAddr != ":3003" || c.LogRetention != 48*time.Hour || c.ConnectTimeout != 10*time.Second {
		t.Fatalf("precedence: %+v", c)
	}
}

// A production hub from a configuration file: JSON log lines, the
// bootstrap file, a clean stop.
func TestServeFromConfigFile(t *testing.T) {
	ca, cert, key := serverCert(t)
	_ = ca
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(t.TempDir(), "tether.yaml")
	os.WriteFile(path, []byte(strings.Join([]string{
		"hub-name: localhost", "data-dir: " + dir, "mqtt-addr: 127.0.0.1:0", "https-addr: 127.0.0.1:0",
		"tls-cert: " + cert, "tls-key: " + key, "log-format: json", "shutdown-timeout: 10s",
	}, "\n")), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		root := newRootCmd()
		root.SetArgs([]string{"serve", "--config", path})
		root.SetOut(&out)
		root.SetErr(&errOut)
		done <- root.ExecuteContext(ctx)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !fileExists(filepath.Join(dir, datadir.APIURLFile)) {
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v\n%s", err, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !fileExists(filepath.Join(dir, datadir.BootstrapFile)) {
		t.Error("no bootstrap file")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	started := false
	for _, line := range strings.Split(strings.TrimSpace(errOut.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == "tether hub started" && rec["hub"] == "localhost" {
			started = true
		}
	}
	if !started {
		t.Errorf("no start record in the log:\n%s", errOut.String())
	}
}
