package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/datadir"
	"github.com/tether-hub/tether/internal/hubclient"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/sas"
)

// prodApp runs a hub without --dev on a CA-signed certificate (port 0).
type prodApp struct {
	*app.App
	dir, ca, cert, key string
}

func startProdApp(t *testing.T, dir, ca, cert, key string) *prodApp {
	t.Helper()
	a := startAppWith(t, app.Config{
		DataDir: dir, HubName: "localhost", TLSCertFile: cert, TLSKeyFile: key,
		MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0",
	})
	return &prodApp{App: a, dir: dir, ca: ca, cert: cert, key: key}
}

func (p *prodApp) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// cli runs commands as an operator on the hub's machine would: --data-dir
// (where the bootstrap file and api-url are) and the CA.
func (p *prodApp) cli() *cliHub {
	return &cliHub{flags: []string{"--data-dir", p.dir, "--ca", p.ca}}
}

// The acceptance scenario of issue 19: a hub started without --dev, its
// bootstrap file read, a device created with the CLI, the owner's primary
// key rotated while a service client keeps working with the secondary,
// and a restart: nothing lost.
func TestProductionHubBootstrapRotationRestart(t *testing.T) {
	ca, cert, key := serverCert(t)
	dir := t.TempDir()
	h := startProdApp(t, dir, ca, cert, key)

	boot, err := os.ReadFile(filepath.Join(dir, datadir.BootstrapFile))
	if err != nil {
		t.Fatalf("bootstrap file: %v", err)
	}
	bootCS, err := sas.ParseConnectionString(strings.TrimSpace(string(boot)))
	if err != nil || bootCS.SharedAccessKeyName != "iothubowner" {
		t.Fatalf("bootstrap file %q: %v", boot, err)
	}
	cli := h.cli()
	out := cli.mustRun(t, "device", "create", "sensor-1")
	if !strings.Contains(out, "sensor-1") {
		t.Fatalf("device create:\n%s", out)
	}

	// A service client on the owner's secondary key, calling all along.
	owner, _ := h.Registry().Policy("iothubowner")
	caPEM, _ := os.ReadFile(ca)
	secondary, err := hubclient.New("https://"+h.HTTPSAddr(), sas.ConnectionString{HostName: "localhost", SharedAccessKeyName: "iothubowner", SharedAccessKey: owner.SecondaryKey}, caPEM)
	if err != nil {
		t.Fatal(err)
	}
	var calls, failures atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := secondary.Send(context.Background(), http.MethodGet, "/devices/sensor-1?api-version=2021-04-12", nil, nil)
			calls.Add(1)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = errors.New(resp.Status)
				}
			}
			if err != nil {
				failures.Add(1)
				firstFailure.CompareAndSwap(nil, err.Error())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	waitCalls := func(n int64) {
		deadline := time.Now().Add(10 * time.Second)
		for calls.Load() < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCalls(10)

	// Rotate the primary with the CLI, authenticated by that very key
	// (the bootstrap file).
	var renewed policyView
	out = cli.mustRun(t, "-o", "json", "policy", "renew-key", "iothubowner", "--key", "primary")
	if err := json.Unmarshal([]byte(out), &renewed); err != nil {
		t.Fatalf("renew-key output: %v\n%s", err, out)
	}
	if renewed.PrimaryKey == owner.PrimaryKey || renewed.SecondaryKey != owner.SecondaryKey || !strings.Contains(renewed.PrimaryConnectionString, renewed.PrimaryKey) {
		t.Fatalf("renewed: %+v (before %+v)", renewed, owner)
	}
	before := calls.Load()
	waitCalls(before + 20)
	close(stop)
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d of %d calls with the secondary key failed during the rotation: %v", n, calls.Load(), firstFailure.Load())
	}

	// The old primary is refused; the hub rewrote the bootstrap file, so
	// the CLI goes on without flags.
	if _, err := (&cliHub{flags: []string{"--connection-string", bootCS.String(), "--url", "https://" + h.HTTPSAddr(), "--ca", ca}}).run(t, "policy", "list"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("the renewed primary key still works: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, datadir.BootstrapFile)); !strings.Contains(string(b), renewed.PrimaryKey) {
		t.Fatalf("bootstrap file not rewritten: %q", b)
	}
	if out := cli.mustRun(t, "policy", "list"); !strings.Contains(out, "iothubowner") || strings.Contains(out, renewed.PrimaryKey) {
		t.Fatalf("policy list (no keys in the table):\n%s", out)
	}
	logsBefore, err := h.Logs().Find(context.Background(), connlog.Filter{Category: connlog.CategoryDeviceIdentityOperations})
	if err != nil || len(logsBefore) == 0 {
		t.Fatalf("identity operations in the log: %d %v", len(logsBefore), err)
	}
	policiesBefore := h.Registry().Policies()
	h.stop(t)

	// Restart: the device, the rotated keys and the log are there.
	h2 := startProdApp(t, dir, ca, cert, key)
	if out := h2.cli().mustRun(t, "device", "show", "sensor-1"); !strings.Contains(out, "sensor-1") {
		t.Fatalf("device after restart:\n%s", out)
	}
	if got := h2.Registry().Policies(); len(got) != len(policiesBefore) {
		t.Fatalf("policies after restart: %d, before %d", len(got), len(policiesBefore))
	} else {
		for i := range got {
			if got[i] != policiesBefore[i] {
				t.Fatalf("policy %s changed across the restart", got[i].Name)
			}
		}
	}
	secondary.Base = "https://" + h2.HTTPSAddr()
	if resp, err := secondary.Send(context.Background(), http.MethodGet, "/devices/sensor-1?api-version=2021-04-12", nil, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("secondary key after restart: %v %v", resp, err)
	}
	logsAfter, err := h2.Logs().Find(context.Background(), connlog.Filter{Category: connlog.CategoryDeviceIdentityOperations})
	if err != nil || len(logsAfter) != len(logsBefore) || logsAfter[0].ItemID != logsBefore[0].ItemID {
		t.Fatalf("log after restart: %d records, before %d (%v)", len(logsAfter), len(logsBefore), err)
	}
}

// --local: through the admin socket of a running hub, directly on the
// data dir of a stopped one, and refused where it cannot work.
func TestPolicyLocalMode(t *testing.T) {
	ca, cert, key := serverCert(t)
	dir := t.TempDir()
	h := startProdApp(t, dir, ca, cert, key)
	// No credentials at all: the bootstrap file is gone.
	os.Remove(filepath.Join(dir, datadir.BootstrapFile))
	local := &cliHub{flags: []string{"--data-dir", dir}}
	if _, err := local.run(t, "policy", "list"); err == nil || !strings.Contains(err.Error(), "--local") {
		t.Fatalf("without credentials: %v", err)
	}
	svc, _ := h.Registry().Policy("service")
	var p policyView
	out := local.mustRun(t, "-o", "json", "policy", "renew-key", "service", "--key", "secondary", "--local")
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	if cur, _ := h.Registry().Policy("service"); p.Policy != cur || p.SecondaryKey == svc.SecondaryKey || p.PrimaryKey != svc.PrimaryKey {
		t.Fatalf("renew over the socket: %+v", p)
	}
	if !strings.HasPrefix(p.PrimaryConnectionString, "HostName=localhost;SharedAccessKeyName=service;") {
		t.Errorf("connection string: %q", p.PrimaryConnectionString)
	}
	h.stop(t)

	// Stopped: the data dir itself.
	out = local.mustRun(t, "-o", "json", "policy", "create", "ops", "--rights", "RegistryRead,ServiceConnect", "--local")
	var ops policyView
	if err := json.Unmarshal([]byte(out), &ops); err != nil || ops.Rights != registry.RegistryRead|registry.ServiceConnect {
		t.Fatalf("offline create: %v\n%s", err, out)
	}
	if _, err := local.run(t, "policy", "delete", "iothubowner", "--local"); err == nil || !strings.Contains(err.Error(), "last one with all rights") {
		t.Errorf("offline delete of the last owner: %v", err)
	}
	if out := local.mustRun(t, "policy", "show", "ops", "--local"); !strings.Contains(out, ops.PrimaryKey) {
		t.Errorf("offline show:\n%s", out)
	}

	// The hub cannot start while an offline command holds the data dir.
	lock, err := datadir.Acquire(dir, "tether policy --local")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := local.run(t, "policy", "list", "--local"); err == nil || !strings.Contains(err.Error(), "in use by process") {
		t.Errorf("locked data dir: %v", err)
	}
	lock.Release()

	h2 := startProdApp(t, dir, ca, cert, key)
	if got, ok := h2.Registry().Policy("ops"); !ok || got != ops.Policy {
		t.Fatalf("offline policy after start: %+v %v", got, ok)
	}
	if _, err := (&cliHub{flags: []string{"--data-dir", t.TempDir()}}).run(t, "policy", "list", "--local"); err == nil || !strings.Contains(err.Error(), "holds no hub data") {
		t.Errorf("--local on an empty dir: %v", err)
	}
	if _, err := local.run(t, "policy", "renew-key", "ops", "--local"); err == nil || !strings.Contains(err.Error(), "--key is required") {
		t.Errorf("renew-key without --key: %v", err)
	}
	if _, err := local.run(t, "policy", "create", "x", "--rights", "Everything", "--local"); err == nil || !strings.Contains(err.Error(), "unknown right") {
		t.Errorf("bad rights: %v", err)
	}
}
