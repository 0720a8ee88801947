package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/hubclient"
	"github.com/tether-hub/tether/internal/notify"
	"github.com/tether-hub/tether/internal/notify/notifytest"
	"github.com/tether-hub/tether/internal/presence"
)

// fastRetries retries event deliveries after 200 ms instead of Event
// Grid's 10 s, 30 s, … so that dead letters come within a test.
func fastRetries(cfg *app.Config) { cfg.EventRetrySchedule = []time.Duration{200 * time.Millisecond} }

// renewThenDrop makes device id connect, renew its SAS token as the Azure
// SDKs do (DISCONNECT, then a new connection with a token that expires
// later) and then lose the connection (no DISCONNECT): four connection
// events, of which a subscription that suppresses renewals gets two,
// DeviceConnected and DeviceDisconnected (404104 network).
func (h *hub) renewThenDrop(id, key string) {
	h.t.Helper()
	before := len(h.events.forDevice(id))
	c, err := dialRaw(h.TCPAddr(), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if rc, err := c.connect(id, username(id), h.token(id, key, time.Hour), 60); err != nil || rc != 0 {
		h.t.Fatalf("%s: CONNACK %d %v", id, rc, err)
	}
	c.disconnect()
	c2, err := dialRaw(h.TCPAddr(), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if rc, err := c2.connect(id, username(id), h.token(id, key, 2*time.Hour), 60); err != nil || rc != 0 {
		h.t.Fatalf("%s: CONNACK %d %v", id, rc, err)
	}
	// Not a wait for a condition: the dropped session must last a
	// measurable time, or its durationMs is 0 (sub-millisecond) and left
	// out of the event (the e-mail test reads it). With a faster connect
	// path the drop came within the millisecond more and more often.
	time.Sleep(5 * time.Millisecond)
	c2.Close()
	evs := h.waitEvents(id, before+4)[before:]
	if !evs[2].TokenRenewal || evs[3].Reason != presence.ReasonNetwork {
		h.t.Fatalf("%s: not a renewal then a drop: %s", id, describe(evs))
	}
}

// createSub creates def through the API and requires it checked.
func (h *hub) createSub(def map[string]any) events.Subscription {
	h.t.Helper()
	status, body := h.api("POST", "/api/v1/subscriptions", def)
	var sub events.Subscription
	_ = json.Unmarshal(body, &sub)
	if status != 201 || sub.ProvisioningState != events.Succeeded {
		h.t.Fatalf("create %v: %d %s", def["name"], status, body)
	}
	return sub
}

// with sets members of a definition by dot path.
func with(def map[string]any, kv ...any) map[string]any {
	for i := 0; i < len(kv); i += 2 {
		m := def
		parts := strings.Split(kv[i].(string), ".")
		for _, p := range parts[:len(parts)-1] {
			if m[p] == nil {
				m[p] = map[string]any{}
			}
			m = m[p].(map[string]any)
		}
		m[parts[len(parts)-1]] = kv[i+1]
	}
	return def
}

// deadLetterIDs lists the event ids of a subscription's dead letters and
// checks their reason and outcome.
func (h *hub) deadLetterIDs(name, reason, outcome string) []string {
	h.t.Helper()
	status, body := h.api("GET", "/api/v1/subscriptions/"+name+"/deadletters", nil)
	var list api.DeadLetterList
	if err := json.Unmarshal(body, &list); err != nil || status != 200 {
		h.t.Fatalf("dead letters: %d %s", status, body)
	}
	var ids []string
	for _, raw := range list.DeadLetters {
		var d struct {
			ID                  string `json:"id"`
			DeadLetterReason    string `json:"deadLetterReason"`
			LastDeliveryOutcome string `json:"lastDeliveryOutcome"`
		}
		_ = json.Unmarshal(raw, &d)
		if d.DeadLetterReason != reason || d.LastDeliveryOutcome != outcome {
			h.t.Errorf("dead letter %s: %s", name, raw)
		}
		ids = append(ids, d.ID)
	}
	return ids
}

func (h *hub) replayAll(name string) {
	h.t.Helper()
	if status, body := h.api("POST", "/api/v1/subscriptions/"+name+"/deadletters/replay", map[string]any{"all": true}); status != 200 {
		h.t.Fatalf("replay: %d %s", status, body)
	}
}

// waitDeadLetters waits until subscription name has dead-lettered n
// events.
func (h *hub) waitDeadLetters(name string, n uint64, within time.Duration) {
	h.t.Helper()
	eventually(h.t, within, func() error {
		if st := h.subStatus(name); st.Delivery.DeadLettered != n {
			return errorf("%+v", st.Delivery)
		}
		return nil
	})
}

func (h *hub) subStatus(name string) api.SubscriptionStatus {
	h.t.Helper()
	status, body := h.api("GET", "/api/v1/subscriptions/"+name+"/status?deliveries=50", nil)
	var st api.SubscriptionStatus
	if err := json.Unmarshal(body, &st); err != nil || status != 200 {
		h.t.Fatalf("status: %d %s", status, body)
	}
	return st
}

// wantEvents checks that evs are exactly the Event Grid events of device
// ces, in order (types and sequence numbers).
func wantEvents(t *testing.T, what string, got []map[string]any, ces ...presence.ConnectionEvent) {
	t.Helper()
	var g, w []string
	for _, e := range got {
		data, _ := e["data"].(map[string]any)
		info, _ := data["deviceConnectionStateEventInfo"].(map[string]any)
		g = append(g, fmt.Sprint(e["eventType"], " ", info["sequenceNumber"]))
	}
	for _, ce := range ces {
		t := events.DeviceConnected
		if ce.Kind == presence.Disconnected {
			t = events.DeviceDisconnected
		}
		w = append(w, fmt.Sprint(t, " ", ce.Sequence))
	}
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Fatalf("%s:\n got %v\nwant %v", what, g, w)
	}
}

// A disconnect reaches a NATS JetStream stream, read back with a plain
// consumer: each device's events in order on its own subject, renewal
// pairs suppressed. When the stream cannot store them (someone took its
// subjects), the events are retried, dead-lettered, and replayed into the
// stream once it can.
func TestStreamSubscriptionEndToEnd(t *testing.T) {
	h := startHubWith(t, t.TempDir(), fastRetries)
	def := with(hubclient.StreamSubscription("fleet-log", 24), "tether.suppressRenewals", true, "retryPolicy.maxDeliveryAttempts", 2)
	sub := h.createSub(def)
	if sub.Destination.Properties.StreamName != "EVENTS_FLEET_LOG" || sub.Validation.Method != events.MethodStream {
		t.Fatalf("%+v", sub)
	}
	keys := map[string]string{}
	for _, id := range []string{"sensor-1", "sensor-2"} {
		keys[id] = h.device(id)
		h.renewThenDrop(id, keys[id])
	}
	read := func(stream string) map[string][]map[string]any {
		c, err := h.Journal().JS.OrderedConsumer(context.Background(), stream, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return nil // not (yet) there
		}
		out := map[string][]map[string]any{}
		for {
			m, err := c.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
			if err != nil {
				return out
			}
			var e map[string]any
			if err := json.Unmarshal(m.Data(), &e); err != nil {
				t.Fatalf("%s: %s", m.Subject(), m.Data())
			}
			out[m.Subject()] = append(out[m.Subject()], e)
		}
	}
	var got map[string][]map[string]any
	eventually(t, 10*time.Second, func() error {
		if got = read("EVENTS_FLEET_LOG"); len(got) != 4 {
			return errorf("stream subjects %v", got)
		}
		return nil
	})
	for _, id := range []string{"sensor-1", "sensor-2"} {
		evs := h.events.forDevice(id)
		both := append(got["events.fleet-log."+id+".connected"], got["events.fleet-log."+id+".disconnected"]...)
		wantEvents(t, id, both, evs[0], evs[3])
	}

	// Someone else's stream takes the subjects: publishing fails.
	js := h.Journal().JS
	if err := js.DeleteStream(context.Background(), "EVENTS_FLEET_LOG"); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "SQUATTER", Subjects: []string{"events.fleet-log.>"}}); err != nil {
		t.Fatal(err)
	}
	h.renewThenDrop("sensor-1", keys["sensor-1"])
	h.waitDeadLetters("fleet-log", 2, 10*time.Second)
	if ids := h.deadLetterIDs("fleet-log", events.DeadLetterMaxAttempts, "StreamUnavailable"); len(ids) != 2 {
		t.Fatalf("dead letters %v", ids)
	}
	if err := js.DeleteStream(context.Background(), "SQUATTER"); err != nil {
		t.Fatal(err)
	}
	h.replayAll("fleet-log")
	eventually(t, 10*time.Second, func() error {
		if got = read("EVENTS_FLEET_LOG"); len(got) != 2 {
			return errorf("stream after replay %v", got)
		}
		return nil
	})
	evs := h.events.forDevice("sensor-1")
	wantEvents(t, "replayed", append(got["events.fleet-log.sensor-1.connected"], got["events.fleet-log.sensor-1.disconnected"]...), evs[4], evs[7])

	// Deleting the subscription deletes its stream.
	if status, _ := h.api("DELETE", "/api/v1/subscriptions/fleet-log", nil); status != 204 {
		t.Fatal(status)
	}
	if _, err := js.Stream(context.Background(), "EVENTS_FLEET_LOG"); err == nil {
		t.Error("the stream outlived its subscription")
	}
}

// commandScript appends each run's device, delivery count and stdin to
// the file named by its argument, in one write (runs for other devices
// go on at the same time); <file>.exit sets its exit status and
// <file>.hang makes it hang.
const commandScript = `#!/bin/sh
[ -e "$1.hang" ] && exec sleep 60
stdin=$(cat)
printf '#%s %s\n%s\n' "$TETHER_DEVICE_ID" "$TETHER_DELIVERY_COUNT" "$stdin" >> "$1"
exit "$(cat "$1.exit" 2>/dev/null || echo 0)"
`

// A disconnect reaches a command: its stdin holds the event (an Event
// Grid array), each device's in order, renewal pairs suppressed. A
// failing program (exit 3) and a hung one (killed at its timeout) are
// retried, dead-lettered and replayed.
func TestCommandSubscriptionEndToEnd(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "on-event.sh"), []byte(commandScript), 0o755); err != nil {
		t.Fatal(err)
	}
	h := startHubWith(t, t.TempDir(), func(cfg *app.Config) { fastRetries(cfg); cfg.EventCommandDir = dir })
	out := filepath.Join(t.TempDir(), "runs")
	def := with(hubclient.CommandSubscription("on-event", "on-event.sh", out), "tether.suppressRenewals", true,
		"retryPolicy.maxDeliveryAttempts", 2, "destination.properties.timeoutInSeconds", 1)
	h.createSub(def)
	runs := func() map[string][]map[string]any {
		b, _ := os.ReadFile(out)
		got := map[string][]map[string]any{}
		for _, rec := range strings.Split(string(b), "#")[1:] {
			head, body, _ := strings.Cut(rec, "\n")
			var batch []map[string]any
			if err := json.Unmarshal([]byte(body), &batch); err != nil {
				t.Fatalf("run %q: stdin is not an Event Grid array: %v", head, err)
			}
			dev := strings.Fields(head)[0]
			got[dev] = append(got[dev], batch...)
		}
		return got
	}
	keys := map[string]string{}
	for _, id := range []string{"plc-1", "plc-2"} {
		keys[id] = h.device(id)
		h.renewThenDrop(id, keys[id])
	}
	eventually(t, 10*time.Second, func() error {
		// Delivered: the runs have exited (0), not just written their record.
		if st := h.subStatus("on-event"); st.Delivery.Delivered != 4 {
			return errorf("%+v", st.Delivery)
		}
		return nil
	})
	r := runs()
	for _, id := range []string{"plc-1", "plc-2"} {
		evs := h.events.forDevice(id)
		wantEvents(t, id, r[id], evs[0], evs[3])
	}
	if reason := r["plc-1"][1]["data"].(map[string]any)["tether"].(map[string]any)["reason"]; reason != "network" {
		t.Errorf("reason %v", reason)
	}

	// Exit 3: retried once, then dead-lettered; replayed once it works.
	os.WriteFile(out+".exit", []byte("3"), 0o644)
	h.renewThenDrop("plc-1", keys["plc-1"])
	h.waitDeadLetters("on-event", 2, 10*time.Second)
	if ids := h.deadLetterIDs("on-event", events.DeadLetterMaxAttempts, "ExitStatus3"); len(ids) != 2 {
		t.Fatalf("dead letters %v", ids)
	}
	os.Remove(out + ".exit")
	h.replayAll("on-event")
	eventually(t, 10*time.Second, func() error {
		if n := len(runs()["plc-1"]); n < 8 { // 2 first, 2×2 failed runs, 2 replayed
			return errorf("%d runs of plc-1", n)
		}
		return nil
	})
	evs := h.events.forDevice("plc-1")
	all := runs()["plc-1"]
	wantEvents(t, "replayed", all[len(all)-2:], evs[4], evs[7])

	// A hung program is killed after its 1 s timeout, twice, then
	// dead-lettered; the delivery log says so.
	os.WriteFile(out+".hang", nil, 0o644)
	key3 := h.device("plc-3")
	c, _ := dialRaw(h.TCPAddr(), nil)
	if rc, err := c.connect("plc-3", username("plc-3"), h.token("plc-3", key3, time.Hour), 60); err != nil || rc != 0 {
		t.Fatal(rc, err)
	}
	start := time.Now()
	h.waitDeadLetters("on-event", 3, 15*time.Second)
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("two 1 s timeouts took %v", took)
	}
	st := h.subStatus("on-event")
	if a := st.Deliveries[0]; a.Outcome != "TimedOut" || !strings.Contains(a.Error, "no exit within 1s; killed") || a.Devices[0] != "plc-3" ||
		!strings.Contains(st.Delivery.LastError, "killed") {
		t.Fatalf("log %+v", st.Deliveries[0])
	}
	os.Remove(out + ".hang")
	h.replayAll("on-event")
	eventually(t, 10*time.Second, func() error {
		if n := len(runs()["plc-3"]); n != 1 {
			return errorf("%d runs of plc-3", n)
		}
		return nil
	})
	c.Close()
}

// The seed's tutorial: mail someone when a critical device disconnects.
// The mail goes through STARTTLS with the hub's account (its password
// from the environment, never in the API); renewal pairs and other
// devices send nothing; a refusing server makes the event retried,
// dead-lettered and replayable.
func TestEmailSubscriptionEndToEnd(t *testing.T) {
	srv := notifytest.StartSMTPTLS(t)
	srv.RequireAuth("tether", "s3cret-pw")
	h := startHubWith(t, t.TempDir(), func(cfg *app.Config) {
		fastRetries(cfg)
		cfg.SMTP = notify.SMTP{Addr: srv.Addr, From: "Tether <tether@example.com>", Username: "tether", Password: "s3cret-pw", Insecure: true}
	})
	def := with(hubclient.EmailSubscription("critical-down", "oncall@example.com"), "tether.suppressRenewals", true,
		"retryPolicy.maxDeliveryAttempts", 2, "filter.includedEventTypes", []string{hubclient.DeviceDisconnected},
		"filter.subjectBeginsWith", "devices/critical-")
	h.createSub(def)
	for _, id := range []string{"critical-7", "lab-1"} {
		h.renewThenDrop(id, h.device(id))
	}
	eventually(t, 10*time.Second, func() error {
		if n := len(srv.Mails()); n != 1 {
			return errorf("%d mails", n)
		}
		return nil
	})
	m := srv.Mails()[0]
	drop := h.events.forDevice("critical-7")[3]
	want := "Subject: [Tether] critical-7 disconnected at " + drop.Time.UTC().Format("15:04:05Z") + ": 404104 network, after "
	if !strings.Contains(m.Data, want) || srv.TLSMails() != 1 || m.To[0] != "oncall@example.com" || !strings.Contains(m.Data, drop.Sequence) {
		t.Fatalf("mail (want %q):\n%s", want, m.Data)
	}

	srv.Reject("451 4.3.2 try again later")
	key := h.device("critical-8")
	h.renewThenDrop("critical-8", key)
	h.waitDeadLetters("critical-down", 1, 10*time.Second)
	if ids := h.deadLetterIDs("critical-down", events.DeadLetterMaxAttempts, "MailServerUnavailable"); len(ids) != 1 {
		t.Fatalf("dead letters %v", ids)
	}
	srv.Reject("")
	h.replayAll("critical-down")
	eventually(t, 10*time.Second, func() error {
		if n := len(srv.Mails()); n != 2 {
			return errorf("%d mails", n)
		}
		return nil
	})
	if !strings.Contains(srv.Mails()[1].Data, "critical-8 disconnected") {
		t.Fatalf("replayed mail:\n%s", srv.Mails()[1].Data)
	}
	for _, path := range []string{"/api/v1/subscriptions/critical-down", "/api/v1/subscriptions/critical-down/status", "/api/v1/subscriptions"} {
		if _, body := h.api("GET", path, nil); strings.Contains(string(body), "s3cret-pw") {
			t.Errorf("%s serves the SMTP password", path)
		}
	}
}

// Destinations the hub was not given (no SMTP server, no command
// directory) are refused by the API with what to do.
func TestUnavailableDestinations(t *testing.T) {
	h := startHub(t)
	for def, want := range map[string]string{
		"mail": "start it with --smtp-addr", "run": "start it with --event-command-dir",
	} {
		d := hubclient.EmailSubscription(def+"-sub", "a@example.com")
		if def == "run" {
			d = hubclient.CommandSubscription(def+"-sub", "x.sh")
		}
		status, body := h.api("POST", "/api/v1/subscriptions", d)
		if status != 400 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d %s", def, status, body)
		}
	}
}
