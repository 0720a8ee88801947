package main

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/api/apitest"
	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
)

func tailConnEvent(t *testing.T, kind presence.Kind, device, seq string, renewal bool) events.Event {
	t.Helper()
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456700, time.UTC)
	ce := presence.ConnectionEvent{ID: device + "/" + seq, Kind: kind, Time: at, Hub: testHub, DeviceID: device, Sequence: seq, Protocol: "MQTT"}
	if kind == presence.Disconnected {
		ce.Reason, ce.Result, ce.DurationMs = presence.ReasonKeepAlive, presence.ResultClosedRemotely, 41000
	}
	ev, ok := events.FromConnection(events.Resource{}, ce, events.Marks{TokenRenewal: renewal})
	if !ok {
		t.Fatal("no event")
	}
	return ev
}

// startTail runs 'tether events tail' with args and returns the tail the
// feed received and a function that waits for the command to end, after
// cancelling it (Ctrl-C) or not.
func startTail(t *testing.T, h *eventsHub, out, errOut *syncBuffer, args ...string) (apitest.TailCall, func(ctrlC bool) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.runCtx(ctx, out, errOut, append([]string{"events", "tail"}, args...)...) }()
	var call apitest.TailCall
	select {
	case call = <-h.feed.Started():
	case err := <-done:
		cancel()
		t.Fatalf("tail ended early: %v", err)
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatal("the feed was not tailed")
	}
	return call, func(ctrlC bool) error {
		if ctrlC {
			cancel()
		} else {
			defer cancel()
		}
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("tail did not stop on cancel")
			return nil
		}
	}
}

func waitLines(t *testing.T, b *syncBuffer, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(b.String(), "\n") < n {
		if time.Now().After(deadline) {
			t.Fatalf("output so far: %q", b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return strings.Split(strings.TrimSpace(b.String()), "\n")
}

func TestEventsTailTable(t *testing.T) {
	h := startEventsHub(t)
	var out, errOut syncBuffer
	call, wait := startTail(t, h, &out, &errOut, "--device", "dev1", "--type", "DeviceConnected,devicedisconnected", "--type", "DeviceDeleted")
	if call.DeviceID != "dev1" || !slices.Equal(call.Types, []string{"Microsoft.Devices.DeviceDeleted", "Microsoft.Devices.DeviceConnected", "Microsoft.Devices.DeviceDisconnected"}) {
		t.Fatalf("tail %+v", call)
	}
	seq1, seq2 := strings.Repeat("0", 63)+"1", strings.Repeat("0", 63)+"2"
	h.feed.Publish(tailConnEvent(t, presence.Connected, "dev1", seq1, false))
	h.feed.Publish(tailConnEvent(t, presence.Disconnected, "dev1", seq2, true))
	del, _ := events.FromChange(events.Resource{}, registry.Change{ID: "c9", Op: registry.OpDeleted, Time: time.Date(2026, 3, 1, 12, 0, 1, 0, time.UTC),
		Hub: testHub, DeviceID: "dev1", Device: registry.Device{DeviceID: "dev1"}})
	h.feed.Publish(del)
	lines := waitLines(t, &out, 3)
	if err := wait(true); err != nil {
		t.Fatalf("tail after Ctrl-C: %v", err)
	}
	want := []string{
		"2026-03-01T12:00:00.1234567Z  DeviceConnected  dev1  " + seq1 + "  -",
		"2026-03-01T12:00:00.1234567Z  DeviceDisconnected  dev1  " + seq2 + "  keep-alive 404104 DeviceConnectionClosedRemotely after 41s token-renewal",
		"2026-03-01T12:00:01.0000000Z  DeviceDeleted  dev1  -  -",
	}
	if !slices.Equal(lines, want) {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(errOut.String(), "Tailing DeviceDeleted, DeviceConnected, DeviceDisconnected events of dev1") {
		t.Fatalf("banner %q", errOut.String())
	}
}

func TestEventsTailJSONAndFailure(t *testing.T) {
	h := startEventsHub(t)
	var out, errOut syncBuffer
	call, wait := startTail(t, h, &out, &errOut, "-o", "json")
	if call.DeviceID != "" || !slices.Equal(call.Types, []string{"Microsoft.Devices.DeviceConnected", "Microsoft.Devices.DeviceDisconnected"}) {
		t.Fatalf("default tail %+v", call)
	}
	ev := tailConnEvent(t, presence.Connected, "dev2", strings.Repeat("0", 63)+"7", false)
	h.feed.Publish(ev)
	lines := waitLines(t, &out, 1)
	var got events.EventGridEvent
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil || got.ID != ev.ID || got.EventType != string(events.DeviceConnected) || got.Subject != "devices/dev2" {
		t.Fatalf("json line %q: %v", lines[0], err)
	}
	if errOut.String() != "" {
		t.Fatalf("JSON output printed a banner: %q", errOut.String())
	}
	// the feed fails: the command ends with the hub's reason
	h.feed.Fail(errors.New("journal unavailable"))
	err := wait(false)
	if err == nil || !strings.Contains(err.Error(), "the hub ended the event stream: the event feed failed: journal unavailable") {
		t.Fatalf("after feed failure: %v", err)
	}
}

func TestEventsTailErrors(t *testing.T) {
	h := startEventsHub(t)
	if _, err := h.run(t, "events", "tail", "--type", "Telemetry"); err == nil || !strings.Contains(err.Error(), `--type: unknown event type "Telemetry"`) {
		t.Fatalf("bad type: %v", err)
	}
	if _, err := h.run(t, "events", "tail", "extra"); err == nil {
		t.Fatal("an argument was accepted")
	}
	// a hub without the feed
	h2 := startCLIHub(t)
	if _, err := h2.run(t, "events", "tail"); err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "event feed") {
		t.Fatalf("without feed: %v", err)
	}
	if _, err := h2.run(t, "sub", "list"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("sub without service: %v", err)
	}
}
