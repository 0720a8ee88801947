package connlog_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
)

// waitIdle waits until every consumer of w waits for a publish.
func waitIdle(t *testing.T, w *connlog.Writer, sources int) {
	t.Helper()
	eventually(t, 10*time.Second, func() (bool, string) {
		return w.Waiting() == sources, fmt.Sprintf("%d of %d consumers waiting", w.Waiting(), sources)
	})
}

// An idle Writer does not poll (its fallback is an hour away), yet every
// event published while it waits is stored: the watch wakes it, round
// after round, on both streams.
func TestWriterWakesOnPublishWhileIdle(t *testing.T) {
	j := openJournal(t)
	store := openStore(t)
	w := startWriter(t, j, store, func(o *connlog.WriterOptions) {
		o.Categories = []string{connlog.CategoryConnections, connlog.CategoryDeviceIdentityOperations}
		o.IdleCheck = time.Hour
	})
	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	for round := 1; round <= 5; round++ {
		waitIdle(t, w, 2)
		publishEvent(t, j.JS, presence.ConnectionEvent{ID: fmt.Sprintf("ev-%d", round), Kind: presence.Connected,
			Time: start.Add(time.Duration(round) * time.Second), Hub: "myhub.azure-devices.net", DeviceID: "dev-1",
			Protocol: "MQTT", MaskedIP: "10.0.0.XXX", SessionID: fmt.Sprintf("s%d", round)})
		eventually(t, 5*time.Second, func() (bool, string) {
			n := len(findAll(t, store, connlog.Filter{Category: connlog.CategoryConnections}))
			return n == round, fmt.Sprintf("round %d: %d connection records stored", round, n)
		})
	}
	waitIdle(t, w, 2)
	publishChange(t, j.JS, registry.Change{ID: "chg-1", Op: registry.OpCreated, Time: start, Hub: "myhub.azure-devices.net",
		DeviceID: "dev-2", Device: registry.Device{DeviceID: "dev-2", Status: registry.Enabled}, Caller: "iothubowner"})
	eventually(t, 5*time.Second, func() (bool, string) {
		n := len(findAll(t, store, connlog.Filter{Category: connlog.CategoryDeviceIdentityOperations}))
		return n == 1, fmt.Sprintf("%d identity records stored", n)
	})
}

// Stop does not wait for an idle Writer's fallback fetch.
func TestWriterStopsPromptlyWhileIdle(t *testing.T) {
	j := openJournal(t)
	w, err := connlog.NewWriter(connlog.WriterOptions{JS: j.JS, Store: openStore(t), Resource: res, Logger: testLogger(t),
		IdleCheck: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	sources := 4 // one consumer per stream: CONN, REGISTRY, OPS, INSIGHTS
	waitIdle(t, w, sources)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.Stop(ctx); err != nil {
		t.Fatalf("Stop of an idle Writer: %v (it waited for the idle fallback)", err)
	}
	if n := w.Waiting(); n != 0 {
		t.Errorf("%d consumers still waiting after Stop", n)
	}
}

// An idle Writer's fallback fetches grow apart while nothing comes
// (IdleCheck doubling), and a publish still wakes it at once.
func TestWriterIdleFetchesGrowApart(t *testing.T) {
	j := openJournal(t)
	store := openStore(t)
	w := startWriter(t, j, store, func(o *connlog.WriterOptions) {
		o.Categories = []string{connlog.CategoryConnections}
		o.IdleCheck = 100 * time.Millisecond
	})
	waitIdle(t, w, 1)
	n0 := w.Fetches()
	time.Sleep(3 * time.Second)
	// Fixed at IdleCheck that is 30 fetches; doubling from 100 ms, 5.
	if n := w.Fetches() - n0; n > 8 {
		t.Errorf("an idle Writer fetched %d times in 3 s at IdleCheck 100 ms, want its waits to grow (≤ 8)", n)
	}
	publishEvent(t, j.JS, presence.ConnectionEvent{ID: "ev-1", Kind: presence.Connected, Time: time.Now().UTC().Truncate(time.Millisecond),
		Hub: "myhub.azure-devices.net", DeviceID: "dev-1", Protocol: "MQTT", MaskedIP: "10.0.0.XXX", SessionID: "s1"})
	eventually(t, 2*time.Second, func() (bool, string) {
		n := len(findAll(t, store, connlog.Filter{Category: connlog.CategoryConnections}))
		return n == 1, fmt.Sprintf("%d connection records stored", n)
	})
}
