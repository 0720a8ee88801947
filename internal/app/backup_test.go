package app_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"sort"
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

// The acceptance test of issue 19: a backup taken through the API while
// devices connect, publish and disconnect, restored into a fresh data dir
// and started: the registry, policies, subscriptions, diagnostic
// settings, alert state, every log record the hub had written before the
// backup started, every connect and every message it acknowledged before
// then are there; and nothing is there that the original hub did not have.
func TestBackupDuringLoadRestoresEverythingAcknowledged(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
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

	devices := map[string]string{}
	for i := range 16 {
		id := fmt.Sprintf("bk-%02d", i)
		devices[id] = a.device(id)
	}
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

	load := startLoad(a, devices, 4)
	time.Sleep(1500 * time.Millisecond) // the load is in full swing

	// What the hub holds as the backup starts.
	logsAtStart := logMap(t, a.App)
	policiesAtStart := a.Registry().Policies()
	devicesAtStart, err := a.Registry().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	subsAtStart := apiJSON(t, a, "/api/v1/subscriptions")
	diagAtStart := apiJSON(t, a, "/api/v1/diagnostic-settings")
	historyAtStart := alertHistory(t, a)
	t0 := time.Now()

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
	status, tarball := a.apiRaw("GET", "/api/v1/backup", nil, nil)
	if status != 200 {
		t.Fatalf("backup: %d %s", status, tarball)
	}
	during.Wait()
	acks := load.halt()
	dir := filepath.Join(root, "backup")
	m, err := backup.Extract(bytes.NewReader(tarball), dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Started.Before(t0) {
		t.Fatalf("the backup started at %s, before it was asked for (%s)", m.Started, t0)
	}
	t.Logf("backup under load: %s; %d acknowledgements, %d failed cycles", m.Summary(), len(acks), load.fails)

	// The original's log once it caught up with everything it journalled.
	time.Sleep(500 * time.Millisecond)
	logsFinal := logMap(t, a.App)
	a.stop()

	restored := filepath.Join(root, "restored")
	if _, err := backup.Restore(ctx, dir, backup.RestoreOptions{DataDir: restored}); err != nil {
		t.Fatal(err)
	}
	b := startHubWith(t, restored, withRules)

	// Registry and policies: everything there at the start, unchanged.
	for _, d := range devicesAtStart {
		got, ok := b.Registry().Device(d.DeviceID)
		if !ok || got.Authentication.SymmetricKey != d.Authentication.SymmetricKey || got.ETag != d.ETag {
			t.Errorf("device %s after restore: %+v (%v)", d.DeviceID, got, ok)
		}
	}
	if got := b.Registry().Policies(); !reflect.DeepEqual(got, policiesAtStart) {
		t.Errorf("policies after restore differ")
	}
	if got := apiJSON(t, b, "/api/v1/subscriptions"); !reflect.DeepEqual(got, subsAtStart) {
		t.Errorf("subscriptions after restore:\n%v\nwant\n%v", got, subsAtStart)
	}
	if got := apiJSON(t, b, "/api/v1/diagnostic-settings"); !reflect.DeepEqual(got, diagAtStart) {
		t.Errorf("diagnostic settings after restore:\n%v\nwant\n%v", got, diagAtStart)
	}
	if got := alertHistory(t, b); len(got) < len(historyAtStart) || !reflect.DeepEqual(got[:len(historyAtStart)], historyAtStart) {
		t.Errorf("alert history after restore: %d transitions, %d before", len(got), len(historyAtStart))
	}

	// The log: every record written before the backup, and every connect
	// acknowledged before it, is there (the restored hub's log writer
	// resumes from the backup's consumer positions).
	connectsBefore := map[string]int{}
	payloadsBefore := map[string]bool{}
	for _, ack := range acks {
		if !ack.at.Before(t0) {
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
	var logsB map[string]map[string]any
	eventually(t, 30*time.Second, func() error {
		logsB = logMap(t, b.App)
		for id, rec := range logsAtStart {
			got, ok := logsB[id]
			if !ok {
				return errorf("record %s (%s %s) written before the backup is missing", id, rec["OperationName"], rec["DeviceId"])
			}
			if !reflect.DeepEqual(got, rec) {
				return errorf("record %s differs:\n%v\nwant\n%v", id, got, rec)
			}
		}
		connects := map[string]int{}
		for _, rec := range logsB {
			if rec["OperationName"] == "deviceConnect" && rec["ResultType"] == "" && rec["TimeGenerated"].(time.Time).Before(t0) {
				connects[rec["DeviceId"].(string)]++
			}
		}
		for dev, n := range connectsBefore {
			if connects[dev] < n {
				var sample map[string]any
				for _, rec := range logsB {
					if rec["DeviceId"] == dev {
						sample = rec
					}
				}
				return errorf("device %s: %d connects acknowledged before the backup, %d in the restored log (%d records; e.g. %v)", dev, n, connects[dev], len(logsB), sample)
			}
		}
		return nil
	})
	// Nothing that the original did not have.
	for id, rec := range logsB {
		if rec["TimeGenerated"].(time.Time).After(t0) {
			continue // the restored hub's own (its start, the orphans of the backup)
		}
		if orig, ok := logsFinal[id]; !ok || !reflect.DeepEqual(orig, rec) {
			t.Errorf("restored record %s is not the original's: %v", id, rec)
		}
	}

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
		len(logsAtStart), sum(connectsBefore), len(payloadsBefore))
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
