package app_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/backup"
	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/hubclient"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/mqttclient"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/sim"
)

// acked is something the hub acknowledged to a device, and when the
// device had the acknowledgement.
type acked struct {
	device  string
	payload string // "" for a CONNACK
	at      time.Time
}

// loadGen connects, publishes (QoS 1) and disconnects devices in a loop
// over plain MQTT, recording every CONNACK and PUBACK.
type loadGen struct {
	mu    sync.Mutex
	acks  []acked
	stop  chan struct{}
	wg    sync.WaitGroup
	fails int
}

func startLoad(h *hub, devices map[string]string, workers int) *loadGen {
	g := &loadGen{stop: make(chan struct{})}
	ids := make([]string, 0, len(devices))
	for id := range devices {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for w := range workers {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for n := 0; ; n++ {
				for i := w; i < len(ids); i += workers {
					select {
					case <-g.stop:
						return
					default:
					}
					g.cycle(h, ids[i], devices[ids[i]], n)
				}
			}
		}()
	}
	return g
}

// cycle is one connect, publish, disconnect of a device.
func (g *loadGen) cycle(h *hub, id, key string, n int) {
	c, err := dialRaw(h.TCPAddr(), nil)
	if err != nil {
		g.fail()
		return
	}
	defer c.Close()
	rc, err := c.connect(id, username(id), h.token(id, key, time.Hour), 60)
	if err != nil || rc != 0 {
		g.fail()
		return
	}
	g.ack(id, "")
	payload := fmt.Sprintf("%s#%d", id, n)
	if _, err := c.Write(mqttclient.AppendPublish(nil, "devices/"+id+"/messages/events/", 1, 7, []byte(payload))); err != nil {
		g.fail()
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var puback [4]byte
	if _, err := io.ReadFull(c, puback[:]); err != nil || puback[0] != 0x40 || binary.BigEndian.Uint16(puback[2:]) != 7 {
		g.fail()
		return
	}
	g.ack(id, payload)
	c.disconnect()
}

func (g *loadGen) ack(id, payload string) {
	at := time.Now()
	g.mu.Lock()
	g.acks = append(g.acks, acked{id, payload, at})
	g.mu.Unlock()
}

func (g *loadGen) fail() { g.mu.Lock(); g.fails++; g.mu.Unlock() }

func (g *loadGen) halt() []acked {
	close(g.stop)
	g.wg.Wait()
	return g.acks
}

// hubState is what a hub holds as a backup starts.
type hubState struct {
	logs     map[string]map[string]any
	policies []registry.Policy
	devices  []registry.Device
	subs     any
	diag     any
	history  []any
	t0       time.Time // after all of the above was read, before the backup was asked for
}

func captureState(t *testing.T, h *hub) hubState {
	t.Helper()
	devs, err := h.Registry().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st := hubState{
		logs: logMap(t, h.App), policies: h.Registry().Policies(), devices: devs,
		subs: apiJSON(t, h, "/api/v1/subscriptions"), diag: apiJSON(t, h, "/api/v1/diagnostic-settings"),
		history: alertHistory(t, h),
	}
	st.t0 = time.Now()
	return st
}

// backupViaAPI takes a backup with GET /api/v1/backup (the tar stream
// `tether backup` reads) into dir.
func backupViaAPI(t *testing.T, h *hub, dir string, st hubState) backup.Manifest {
	t.Helper()
	status, tarball := h.apiRaw("GET", "/api/v1/backup", nil, nil)
	if status != 200 {
		t.Fatalf("backup: %d %s", status, tarball)
	}
	m, err := backup.Extract(bytes.NewReader(tarball), dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Started.Before(st.t0) {
		t.Fatalf("the backup started at %s, before it was asked for (%s)", m.Started, st.t0)
	}
	return m
}

// restoreAndStart restores dir into a new data dir and starts a hub on it.
func restoreAndStart(t *testing.T, dir, target string, configure func(*app.Config)) *hub {
	t.Helper()
	if _, err := backup.Restore(context.Background(), dir, backup.RestoreOptions{DataDir: target}); err != nil {
		t.Fatal(err)
	}
	return startHubWith(t, target, configure)
}

// checkRestored compares a restored hub b with what the original held as
// the backup started (st) and at its end (final log): registry, policies,
// subscriptions, diagnostic settings and alert history as they were; every
// log record written before the backup, identical; no record from before
// the backup that the original did not have. extra, if set, runs inside
// the wait for b's log writer to catch up.
func checkRestored(t *testing.T, b *hub, st hubState, final map[string]map[string]any, extra func(logs map[string]map[string]any) error) {
	t.Helper()
	for _, d := range st.devices {
		got, ok := b.Registry().Device(d.DeviceID)
		if !ok || got.Authentication.SymmetricKey != d.Authentication.SymmetricKey || got.ETag != d.ETag {
			t.Errorf("device %s after restore: %+v (%v)", d.DeviceID, got, ok)
		}
	}
	if got := b.Registry().Policies(); !reflect.DeepEqual(got, st.policies) {
		t.Errorf("policies after restore differ")
	}
	if got := apiJSON(t, b, "/api/v1/subscriptions"); !reflect.DeepEqual(got, st.subs) {
		t.Errorf("subscriptions after restore:\n%v\nwant\n%v", got, st.subs)
	}
	if got := apiJSON(t, b, "/api/v1/diagnostic-settings"); !reflect.DeepEqual(got, st.diag) {
		t.Errorf("diagnostic settings after restore:\n%v\nwant\n%v", got, st.diag)
	}
	if got := alertHistory(t, b); len(got) < len(st.history) || !reflect.DeepEqual(got[:len(st.history)], st.history) {
		t.Errorf("alert history after restore: %d transitions, %d before", len(got), len(st.history))
	}
	var logsB map[string]map[string]any
	eventually(t, 30*time.Second, func() error {
		logsB = logMap(t, b.App)
		for id, rec := range st.logs {
			got, ok := logsB[id]
			if !ok {
				return errorf("record %s (%s %s) written before the backup is missing", id, rec["OperationName"], rec["DeviceId"])
			}
			if !reflect.DeepEqual(got, rec) {
				return errorf("record %s differs:\n%v\nwant\n%v", id, got, rec)
			}
		}
		if extra != nil {
			return extra(logsB)
		}
		return nil
	})
	for id, rec := range logsB {
		if rec["TimeGenerated"].(time.Time).After(st.t0) {
			continue // the restored hub's own (its start, the orphans of the backup)
		}
		if orig, ok := final[id]; !ok || !reflect.DeepEqual(orig, rec) {
			t.Errorf("restored record %s is not the original's: %v", id, rec)
		}
	}
}

// fleetFixture is a hub with an alert rule that fires, a stream
// subscription and a diagnostic setting, for the backup tests.
func fleetFixture(t *testing.T, root string) (*hub, func(*app.Config)) {
	t.Helper()
	rules := filepath.Join(root, "rules.yaml")
	writeFile(t, rules, `
rules:
  - name: fleet-present
    severity: 3
    metric: {name: connectedDeviceCount, aggregation: Maximum}
    operator: GreaterThanOrEqual
    threshold: 0
    frequency: 1s
    window: 1s
`)
	withRules := func(c *app.Config) { c.RulesFile = rules }
	a := startHubWith(t, filepath.Join(root, "a"), withRules)
	a.createSub(hubclient.StreamSubscription("fleet-log", 24))
	if st, body := a.api("PUT", "/api/v1/diagnostic-settings/keep", map[string]any{
		"categories": []string{"allLogs"}, "workspace": map[string]any{}, "archive": map[string]any{"retentionDays": 3},
	}); st != 201 {
		t.Fatalf("diagnostic setting: %d %s", st, body)
	}
	eventually(t, 15*time.Second, func() error {
		if h := alertHistory(t, a); len(h) == 0 {
			return errorf("the rule has not fired yet")
		}
		return nil
	})
	return a, withRules
}

// The acceptance test of issue 19: a backup taken through the API while
// devices connect, publish and disconnect, restored into a fresh data dir
// and started: the registry, policies, subscriptions, diagnostic
// settings, alert state, every log record the hub had written before the
// backup started, every connect and every message it acknowledged before
// then are there; and nothing is there that the original hub did not have.
func TestBackupDuringLoadRestoresEverythingAcknowledged(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	a, withRules := fleetFixture(t, root)
	devices := map[string]string{}
	for i := range 16 {
		id := fmt.Sprintf("bk-%02d", i)
		devices[id] = a.device(id)
	}
	load := startLoad(a, devices, 4)
	time.Sleep(1500 * time.Millisecond) // the load is in full swing

	st := captureState(t, a)
	// Registry writes during the backup, too.
	var during sync.WaitGroup
	during.Add(1)
	go func() {
		defer during.Done()
		for i := range 5 {
			if _, err := a.Registry().Create(ctx, registry.Device{DeviceID: fmt.Sprintf("late-%d", i)}, "test"); err != nil {
				t.Error(err)
			}
		}
	}()
	dir := filepath.Join(root, "backup")
	m := backupViaAPI(t, a, dir, st)
	during.Wait()
	acks := load.halt()
	t.Logf("backup under load: %s; %d acknowledgements, %d failed cycles", m.Summary(), len(acks), load.fails)

	// The original's log once it caught up with everything it journalled.
	time.Sleep(500 * time.Millisecond)
	final := logMap(t, a.App)
	a.stop()
	b := restoreAndStart(t, dir, filepath.Join(root, "restored"), withRules)

	// Every connect and message acknowledged before the backup started.
	connectsBefore := map[string]int{}
	payloadsBefore := map[string]bool{}
	for _, ack := range acks {
		if !ack.at.Before(st.t0) {
			continue
		}
		if ack.payload == "" {
			connectsBefore[ack.device]++
		} else {
			payloadsBefore[ack.payload] = true
		}
	}
	if len(connectsBefore) == 0 || len(payloadsBefore) == 0 {
		t.Fatal("the load acknowledged nothing before the backup")
	}
	checkRestored(t, b, st, final, func(logs map[string]map[string]any) error {
		connects := map[string]int{}
		for _, rec := range logs {
			if rec["OperationName"] == "deviceConnect" && rec["ResultType"] == "" && rec["TimeGenerated"].(time.Time).Before(st.t0) {
				connects[rec["DeviceId"].(string)]++
			}
		}
		for dev, n := range connectsBefore {
			if connects[dev] < n {
				return errorf("device %s: %d connects acknowledged before the backup, %d in the restored log", dev, n, connects[dev])
			}
		}
		return nil
	})

	// Telemetry acknowledged (PUBACK) before the backup is in the journal.
	inJournal := map[string]bool{}
	cons, err := b.Journal().JS.OrderedConsumer(ctx, journal.StreamTelemetry, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(500 * time.Millisecond))
		if err != nil {
			break
		}
		inJournal[string(msg.Data())] = true
	}
	for p := range payloadsBefore {
		if !inJournal[p] {
			t.Errorf("message %q acknowledged before the backup is not in the restored journal", p)
		}
	}
	t.Logf("compared: %d log records from before the backup, %d connects and %d messages acknowledged before it",
		len(st.logs), sum(connectsBefore), len(payloadsBefore))
}

// The same with `tether sim` driving the hub (SDK-like renewals, faults,
// telemetry, twins) while the backup is taken; the simulation's own
// comparison of the hub's reports must hold too.
func TestBackupDuringSimRun(t *testing.T) {
	if testing.Short() {
		t.Skip("a 10 s simulation")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root := t.TempDir()
	a, withRules := fleetFixture(t, root)
	api, err := hubclient.FromDevDir(ctx, a.DataDir(), "https://"+a.HTTPSAddr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(a.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	faults, err := sim.ParseFaults("drop=10%/min,expired=5%,wrongkey=5%")
	if err != nil {
		t.Fatal(err)
	}
	cfg := sim.Config{
		Devices: 40, Duration: 10 * time.Second, Ramp: 40, Profile: "node", TokenTTL: 5 * time.Second,
		Telemetry: time.Second, Faults: faults, Prefix: "simbk",
		HubName: a.HubName(), MQTTAddr: a.MQTTAddr(), HTTPSAddr: a.HTTPSAddr(), CAPEM: ca, Settle: 60 * time.Second,
	}
	type result struct {
		rep *sim.Report
		err error
	}
	done := make(chan result, 1)
	var out strings.Builder
	go func() {
		rep, err := sim.Run(ctx, cfg, sim.Env{API: api, Out: &out})
		done <- result{rep, err}
	}()
	time.Sleep(6 * time.Second) // devices connected, renewing, dropping
	// The log writer trails the connects, further on a loaded machine:
	// back up once some are written, so "before the backup" holds some.
	eventually(t, 30*time.Second, func() error {
		for _, rec := range logMap(t, a.App) {
			if rec["Category"] == "Connections" {
				return nil
			}
		}
		return errorf("no Connections record written yet")
	})
	st := captureState(t, a)
	dir := filepath.Join(root, "backup")
	m := backupViaAPI(t, a, dir, st)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if c := r.rep.Comparison; !r.rep.OK() || c.Missing != 0 {
		r.rep.WriteText(&out)
		t.Fatalf("the hub's reports do not match the simulation during the backup:\n%s", out.String())
	}
	t.Logf("backup during the simulation: %s", m.Summary())
	final := logMap(t, a.App)
	a.stop()
	b := restoreAndStart(t, dir, filepath.Join(root, "restored"), withRules)
	checkRestored(t, b, st, final, nil)
	var connects int
	for _, rec := range st.logs {
		if rec["Category"] == "Connections" {
			connects++
		}
	}
	if connects == 0 {
		t.Fatal("no Connections record before the backup: the simulation did not run")
	}
	t.Logf("compared: %d log records from before the backup (%d Connections), %d devices", len(st.logs), connects, len(st.devices))
}

// logMap is every record of the hub's log store by _ItemId, as maps.
func logMap(t *testing.T, a *app.App) map[string]map[string]any {
	t.Helper()
	recs, err := a.Logs().Find(context.Background(), connlog.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]map[string]any, len(recs))
	for _, r := range recs {
		out[r.ItemID] = r.Map()
	}
	return out
}

func apiJSON(t *testing.T, h *hub, path string) any {
	t.Helper()
	status, body := h.api("GET", path, nil)
	if status != 200 {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func alertHistory(t *testing.T, h *hub) []any {
	t.Helper()
	v, _ := apiJSON(t, h, "/api/v1/alerts/history").(map[string]any)
	records, _ := v["history"].([]any)
	return records
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
