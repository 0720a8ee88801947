package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/events/memstore"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
)

const testHub = "egtesthub1.azure-devices.net"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// eventually polls cond until it holds or 10 s have passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// env is one test's hub side: an embedded journal, a subscription store,
// a fake clock and an engine.
type env struct {
	t       *testing.T
	ctx     context.Context
	dir     string
	j       *journal.Journal
	store   *memstore.Store
	clock   *fakeClock
	eng     *Engine
	opts    Options
	mu      sync.Mutex
	seq     map[string]int
	lastSeq map[string]string
}

func newEnv(t *testing.T, mod ...func(*Options)) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	t.Cleanup(cancel)
	v := &env{t: t, ctx: ctx, dir: t.TempDir(), store: memstore.New(), clock: newFakeClock(t0),
		seq: map[string]int{}, lastSeq: map[string]string{}}
	v.openJournal()
	v.opts = Options{
		Store: v.store, HubHost: testHub, Clock: v.clock, ResyncInterval: -1,
		AckWait: 2 * time.Second, MaxInFlightPerSub: 8,
		// No jitter by default: with random jitter the attempt count before
		// the 24 h time-to-live varies (10 or 11); TestBackoff covers it.
		Rand: func() float64 { return 0.5 },
	}
	for _, m := range mod {
		m(&v.opts)
	}
	return v
}

func (v *env) openJournal() {
	j, err := journal.Open(v.ctx, journal.Options{DataDir: v.dir})
	if err != nil {
		v.t.Fatal(err)
	}
	v.j = j
	v.t.Cleanup(func() {
		if v.j == j {
			j.Close()
		}
	})
}

// start builds and starts an engine on the journal.
func (v *env) start() *Engine {
	v.t.Helper()
	o := v.opts
	o.JS = v.j.JS
	e, err := New(o)
	if err != nil {
		v.t.Fatal(err)
	}
	if err := e.Start(v.ctx); err != nil {
		v.t.Fatal(err)
	}
	v.eng = e
	v.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	})
	return e
}

// sub stores a validated subscription to url and reloads it.
func (v *env) sub(name, url string, mod ...func(*events.Subscription)) events.Subscription {
	v.t.Helper()
	s := events.Subscription{Name: name, Destination: events.Destination{Properties: events.DestinationProperties{EndpointURL: url}}}
	s.ApplyDefaults()
	s.ProvisioningState = events.Succeeded
	for _, m := range mod {
		m(&s)
	}
	if _, err := v.store.Create(v.ctx, s); err != nil {
		v.t.Fatal(err)
	}
	if err := v.eng.Reload(v.ctx, name); err != nil {
		v.t.Fatal(err)
	}
	return s
}

// subTo stores a subscription of destination d, checked by the engine
// (Engine.Check: a stream is created), and reloads it. It fails the test
// unless the check succeeded.
func (v *env) subTo(name string, d events.Destination, mod ...func(*events.Subscription)) events.Subscription {
	v.t.Helper()
	s := events.Subscription{Name: name, Destination: d}
	for _, m := range mod {
		m(&s)
	}
	s.ApplyDefaults()
	if err := s.Validate(); err != nil {
		v.t.Fatal(err)
	}
	s = v.eng.Check(v.ctx, s)
	if s.ProvisioningState != events.Succeeded {
		v.t.Fatalf("check of %s: %s %+v", name, s.ProvisioningState, s.Validation)
	}
	if _, err := v.store.Create(v.ctx, s); err != nil {
		v.t.Fatal(err)
	}
	if err := v.eng.Reload(v.ctx, name); err != nil {
		v.t.Fatal(err)
	}
	return s
}

// update rewrites subscription name and reloads it.
func (v *env) update(name string, mod func(*events.Subscription)) {
	v.t.Helper()
	s, _, err := v.store.Get(v.ctx, name)
	if err != nil {
		v.t.Fatal(err)
	}
	mod(&s)
	if _, err := v.store.Update(v.ctx, s, 0); err != nil {
		v.t.Fatal(err)
	}
	if err := v.eng.Reload(v.ctx, name); err != nil {
		v.t.Fatal(err)
	}
}

// conn journals the next connection event of dev, at the fake clock's
// time, and returns it.
func (v *env) conn(dev string, kind presence.Kind, mod ...func(*presence.ConnectionEvent)) presence.ConnectionEvent {
	v.t.Helper()
	v.mu.Lock()
	v.seq[dev]++
	seq := fmt.Sprintf("%064X", 0x1000+v.seq[dev])
	v.lastSeq[dev] = seq
	v.mu.Unlock()
	ce := presence.ConnectionEvent{
		ID: dev + "/" + seq, Kind: kind, Time: v.clock.Now(), Hub: testHub, DeviceID: dev, Sequence: seq,
		Protocol: "MQTT", ProtocolVersion: 4,
	}
	if kind == presence.Disconnected {
		ce.Reason, ce.Result = presence.ReasonKeepAlive, presence.ResultClosedRemotely
	}
	for _, m := range mod {
		m(&ce)
	}
	v.publishConn(ce)
	return ce
}

func (v *env) publishConn(ce presence.ConnectionEvent) {
	v.t.Helper()
	b, _ := json.Marshal(ce)
	m := nats.NewMsg(journal.ConnSubject(ce.DeviceID, string(ce.Kind)))
	m.Data = b
	m.Header.Set(jetstream.MsgIDHeader, ce.ID)
	if _, err := v.j.JS.PublishMsg(v.ctx, m); err != nil {
		v.t.Fatal(err)
	}
}

// id is the event id of ce.
func id(ce presence.ConnectionEvent) string {
	e, _ := events.FromConnection(events.Resource{}, ce, events.Marks{})
	return e.ID
}

func (v *env) stats(name string) Stats {
	s, _ := v.eng.StatsOf(name)
	return s
}

// consumerInfo is the durable consumer of subscription name on stream.
func (v *env) consumerInfo(stream, name string) *jetstream.ConsumerInfo {
	v.t.Helper()
	c, err := v.j.JS.Consumer(v.ctx, stream, ConsumerName(name))
	if err != nil {
		v.t.Fatal(err)
	}
	info, err := c.Info(v.ctx)
	if err != nil {
		v.t.Fatal(err)
	}
	return info
}

// got is one event a receiver got.
type got struct {
	ID        string `json:"id"`
	EventType string `json:"eventType"`
	Subject   string `json:"subject"`
	Data      struct {
		DeviceID string `json:"deviceId"`
		Info     struct {
			Seq string `json:"sequenceNumber"`
		} `json:"deviceConnectionStateEventInfo"`
		Tether struct {
			TokenRenewal bool   `json:"tokenRenewal"`
			Reason       string `json:"reason"`
		} `json:"tether"`
	} `json:"data"`
}

// post is one request a receiver got.
type post struct {
	At     time.Time // fake clock
	Header http.Header
	Body   []byte
	Events []got
	Status int
}

// receiver is a fake webhook endpoint on 127.0.0.1. answer decides the
// status of each POST (200 if nil); it may block (a hanging endpoint)
// until the request's context ends.
type receiver struct {
	*httptest.Server
	t       *testing.T
	clock   *fakeClock
	mu      sync.Mutex
	posts   []post
	answer  func(r *http.Request, p post) int
	busy    map[string]int // device → POSTs in progress
	overlap []string
}

func newReceiver(t *testing.T, clock *fakeClock, answer func(r *http.Request, p post) int) *receiver {
	rc := &receiver{t: t, clock: clock, answer: answer, busy: map[string]int{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	p := post{At: rc.clock.Now(), Header: r.Header.Clone(), Body: b}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/cloudevents") {
		var one struct {
			ID      string `json:"id"`
			Type    string `json:"type"`
			Subject string `json:"subject"`
		}
		if json.Unmarshal(b, &one) == nil && one.ID != "" {
			p.Events = []got{{ID: one.ID, EventType: one.Type, Subject: one.Subject}}
		}
	} else if err := json.Unmarshal(b, &p.Events); err != nil {
		rc.t.Errorf("body is not an event array: %v: %s", err, b)
	}
	devs := map[string]bool{}
	rc.mu.Lock()
	for _, e := range p.Events {
		d := strings.TrimPrefix(e.Subject, "devices/")
		if !devs[d] {
			devs[d] = true
			if rc.busy[d]++; rc.busy[d] > 1 {
				rc.overlap = append(rc.overlap, d)
			}
		}
	}
	answer := rc.answer
	rc.mu.Unlock()
	status := http.StatusOK
	if answer != nil {
		status = answer(r, p)
	}
	p.Status = status
	rc.mu.Lock()
	for d := range devs {
		rc.busy[d]--
	}
	rc.posts = append(rc.posts, p)
	rc.mu.Unlock()
	w.WriteHeader(status)
}

func (rc *receiver) setAnswer(f func(r *http.Request, p post) int) {
	rc.mu.Lock()
	rc.answer = f
	rc.mu.Unlock()
}

// all returns the POSTs so far (answered ones).
func (rc *receiver) all() []post {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]post(nil), rc.posts...)
}

// delivered returns the events of successful POSTs, in answer order.
func (rc *receiver) delivered() []got {
	var out []got
	for _, p := range rc.all() {
		if Succeeded(p.Status) {
			out = append(out, p.Events...)
		}
	}
	return out
}

func (rc *receiver) count() int { return len(rc.all()) }

// deliveredIDs returns the ids of delivered events of device dev, in order.
func (rc *receiver) deliveredIDs(dev string) []string {
	var out []string
	for _, e := range rc.delivered() {
		if e.Subject == "devices/"+dev {
			out = append(out, e.ID)
		}
	}
	return out
}

func (rc *receiver) overlaps() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.overlap...)
}

func ids(ces ...presence.ConnectionEvent) []string {
	out := make([]string, len(ces))
	for i, ce := range ces {
		out[i] = id(ce)
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// change journals a registry change of dev.
func (v *env) change(dev string, op registry.Op) registry.Change {
	v.t.Helper()
	c := registry.Change{ID: fmt.Sprintf("chg-%s-%s-%d", dev, op, v.clock.Now().UnixNano()), Op: op, Time: v.clock.Now(),
		Hub: testHub, DeviceID: dev, Device: registry.Device{DeviceID: dev, ETag: "AAAAAAAAAAE=", Status: registry.Enabled}}
	b, _ := json.Marshal(c)
	m := nats.NewMsg(journal.RegistrySubject(dev, string(op)))
	m.Data = b
	m.Header.Set(jetstream.MsgIDHeader, c.ID)
	if _, err := v.j.JS.PublishMsg(v.ctx, m); err != nil {
		v.t.Fatal(err)
	}
	return c
}

// telemetry journals a message of dev as the hub does (payload, headers).
func (v *env) telemetry(dev, payload string) {
	v.t.Helper()
	m := nats.NewMsg(journal.TelemetrySubject(dev))
	m.Data = []byte(payload)
	m.Header.Set("Tether-Enqueued-Time", v.clock.Now().Format(time.RFC3339Nano))
	m.Header.Set("Tether-Device-Id", dev)
	m.Header.Set("Tether-Properties", `{"Status":"Active"}`)
	m.Header.Set("Tether-System-Properties", `{"content-type":"application/json","content-encoding":"utf-8","message-id":"m-1"}`)
	if _, err := v.j.JS.PublishMsg(v.ctx, m); err != nil {
		v.t.Fatal(err)
	}
}

func changeID(c registry.Change) string {
	e, _ := events.FromChange(events.Resource{}, c)
	return e.ID
}

// debugLog captures the engine's debug log in buf (newEnv option), for
// dumpOnFailure.
func debugLog(buf *syncBuf) func(*Options) {
	return func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

// dumpOnFailure logs, if the test fails, what explains a stuck delivery:
// the subscription's stats, the fake clock's timers, its consumer on
// TETHER_CONN, the engine log and every POST the receiver got.
func (v *env) dumpOnFailure(sub string, rc *receiver, log *syncBuf) {
	t := v.t
	t.Cleanup(func() { // before the journal and the receiver close
		if !t.Failed() {
			return
		}
		consumer := "unavailable (the journal is closed)"
		if c, err := v.j.JS.Consumer(v.ctx, journal.StreamConn, ConsumerName(sub)); err == nil {
			if info, err := c.Info(v.ctx); err == nil {
				consumer = fmt.Sprintf("%+v", info)
			}
		}
		t.Logf("stats %+v\nclock pending %v\nconsumer %s\nlog:\n%s", v.stats(sub), v.clock.Pending(), consumer, log.String())
		for _, p := range rc.all() {
			t.Logf("post %v %v", p.Status, p.Events)
		}
	})
}

// syncBuf is a bytes.Buffer safe for the engine's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
