package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Acceptance (issue 3): kill -9 of the hub while 1,000 devices reconnect
// and the receiver is down; after restart and receiver recovery, every
// ConnectionEvent of the run is delivered at least once, in order per
// device, and none is missing (the test counts them).
//
// Ground truth is the journal itself: after the run the hub is stopped
// cleanly and the test opens its JetStream store (stream TETHER_CONN) from
// the data dir. Every connected/disconnected record there must have been
// delivered. The journal is checked in turn against what the clients saw
// (every session the hub acknowledged with CONNACK 0 must have its
// connected record) and against the Connections log the API serves.
//
// Timeline (hub generation 1 = before the kill, 2 = after):
//
//	start hub · create 1,000 devices over REST · receiver up, subscription
//	validated · receiver DOWN (503) · connect all · waves of drop (half
//	DISCONNECT, half TCP close) + reconnect · SIGKILL half-way through
//	wave 2 · restart (same data dir and ports) · the wave goes on against
//	the new hub · sessions cut by the crash reconnect · waves 3, 4 ·
//	receiver UP · every device disconnects · wait for delivery · SIGTERM ·
//	read the journal · compare.
//
// The delivery engine retries on Event Grid's schedule (10 s, 30 s, 1 min…)
// and the hub has no flag to shorten it, so the receiver comes back within
// a second of the restart. The events that failed (503) before the kill are
// unacknowledged in JetStream; the restarted engine takes them back (it
// shortens the consumers' AckWait while it recovers) and delivers them, in
// order, before anything newer of the same device. The test takes ~45 s,
// most of it retries and parked events (10 s retry, 15 s park delay) of
// the devices whose first attempts after the restart met the receiver
// still down.
//
// The hub stores a device's connected event in the journal before it sends
// the CONNACK, so every acknowledged session has its record. The converse
// does not hold: a CONNECT whose event was stored when the kill came may
// never have had its CONNACK delivered, so a device may have one connected
// record more than the sessions its client saw — only as its last record
// before the kill, closed at restart as hub-restart.
func TestCrashDuringReconnectStormDeliversEveryConnectionEvent(t *testing.T) {
	const (
		nDevices = 1000
		waves    = 4
		killWave = 2
		par      = 64 // connects in flight
	)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	phase := phaseLogger(t)

	h, a, devs := startHubWithDevices(ctx, t, phase, "crash", nDevices)

	rc := startReceiver(t)
	code, sub, err := a.createSubscription(ctx, map[string]any{
		"name": "crash-test",
		"destination": map[string]any{"endpointType": "WebHook",
			"properties": map[string]any{"endpointUrl": rc.url}},
		"filter": map[string]any{"includedEventTypes": []string{
			"Microsoft.Devices.DeviceConnected", "Microsoft.Devices.DeviceDisconnected"}},
	})
	if err != nil || code != 201 || sub["provisioningState"] != "Succeeded" {
		t.Fatalf("create subscription: %d %v %v", code, sub, err)
	}
	rc.setUp(false)
	phase("subscription validated; receiver DOWN (503)")

	var gen atomic.Int32
	gen.Store(1)
	dial := func(_ int, d *device) error { return d.dial(ctx, h.tcpAddr, &gen) }
	if err := forEach(ctx, devs, par, nil, dial); err != nil {
		t.Fatal(err)
	}
	phase("wave 0: %d devices connected", nDevices)

	var killedAt, restartedAt time.Time
	for w := 1; w <= waves; w++ {
		var done atomic.Int64
		cycle := func(i int, d *device) error {
			d.drop((i+w)%2 == 0)
			return d.dial(ctx, h.tcpAddr, &gen)
		}
		if w != killWave {
			if err := forEach(ctx, devs, par, &done, cycle); err != nil {
				t.Fatal(err)
			}
			phase("wave %d: %d devices dropped and reconnected (hub generation %d)", w, done.Load(), gen.Load())
			continue
		}
		waveErr := make(chan error, 1)
		go func() { waveErr <- forEach(ctx, devs, par, &done, cycle) }()
		for done.Load() < nDevices/2 {
			select {
			case err := <-waveErr:
				t.Fatalf("wave %d ended before the kill: %v", w, err)
			case <-time.After(time.Millisecond):
			}
		}
		h.kill()
		killedAt = time.Now()
		gen.Store(2) // hub 1 is gone: whatever connects from now on reaches hub 2
		phase("wave %d: SIGKILL after %d of %d reconnects", w, done.Load(), nDevices)
		h.start()
		restartedAt = time.Now()
		phase("hub restarted on the same data dir and ports (%.1fs after the kill)", restartedAt.Sub(killedAt).Seconds())
		if err := <-waveErr; err != nil {
			t.Fatal(err)
		}
		var cut []*device
		for _, d := range devs {
			if d.connGen() == 1 {
				cut = append(cut, d)
			}
		}
		if err := forEach(ctx, cut, par, nil, func(_ int, d *device) error {
			d.drop(false)
			return d.dial(ctx, h.tcpAddr, &gen)
		}); err != nil {
			t.Fatal(err)
		}
		phase("wave %d done; %d sessions cut by the crash reconnected", w, len(cut))
	}
	rc.setUp(true)
	upAt := time.Now()
	phase("receiver UP (%.1fs after the restart)", upAt.Sub(restartedAt).Seconds())
	if err := forEach(ctx, devs, par, nil, func(_ int, d *device) error { d.drop(true); return nil }); err != nil {
		t.Fatal(err)
	}
	phase("every device disconnected (DISCONNECT)")

	// The hub's second generation has its own epoch in the sequence
	// numbers; the last record of any device carries it.
	var epoch2 string
	for epoch2 == "" && ctx.Err() == nil {
		recs, err := a.connectionLogs(ctx, devs[0].id)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if len(r.SequenceNumber) == 64 && epochOf(r.SequenceNumber) > epoch2 {
				epoch2 = epochOf(r.SequenceNumber)
			}
		}
		if epoch2 == "" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Wait until every device's generation-2 events (a connected and a
	// disconnected per acknowledged session) have arrived. Per device the
	// engine delivers in sequence order, so its generation-1 events are
	// settled by then too.
	waitCtx, waitCancel := context.WithTimeout(ctx, 3*time.Minute)
	defer waitCancel()
	var lagging int
	for {
		lagging = 0
		got := map[string]map[string]bool{}
		for _, e := range rc.snapshot() {
			if len(e.Seq) == 64 && epochOf(e.Seq) == epoch2 {
				if got[e.Device] == nil {
					got[e.Device] = map[string]bool{}
				}
				got[e.Device][e.ID] = true
			}
		}
		for _, d := range devs {
			if len(got[d.id]) < 2*d.sessions[2] {
				lagging++
			}
		}
		if lagging == 0 || waitCtx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	deliveredAt := time.Now()
	if lagging > 0 {
		t.Errorf("after 3 minutes %d devices still miss generation-2 deliveries (going on to count what is missing)", lagging)
	} else {
		phase("all generation-2 events delivered, %.1fs after the receiver came back, %.1fs after the restart",
			deliveredAt.Sub(upAt).Seconds(), deliveredAt.Sub(restartedAt).Seconds())
	}
	time.Sleep(time.Second) // a straggling duplicate would land here

	logs := map[string][]logRecord{}
	var logsMu sync.Mutex
	if err := forEach(ctx, devs, 16, nil, func(_ int, d *device) error {
		recs, err := a.connectionLogs(ctx, d.id)
		logsMu.Lock()
		logs[d.id] = recs
		logsMu.Unlock()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !h.stop(30 * time.Second) {
		t.Errorf("the hub did not stop cleanly on SIGTERM within 30 s")
	}
	phase("hub stopped (SIGTERM)")
	journal, err := readConnJournal(ctx, h.dir)
	if err != nil {
		t.Fatal(err)
	}
	phase("journal read: %d records in TETHER_CONN", len(journal))

	checkCrashRun(t, devs, journal, rc, logs, epoch2)
	for _, l := range h.logLines("level=WARN", "level=ERROR") {
		t.Logf("hub: %s", l)
	}
}

// epochOf is the hub-start epoch inside a sequence number (digits 16–32).
func epochOf(seq string) string {
	if len(seq) != 64 {
		return ""
	}
	return seq[16:32]
}

// counter is the per-device counter part of a sequence number, for
// messages.
func counter(seq string) string {
	if len(seq) != 64 {
		return seq
	}
	return "…" + strings.TrimLeft(seq[40:], "0")
}

type evKey struct{ dev, seq string }

func checkCrashRun(t *testing.T, devs []*device, journal []journalEvent, rc *receiver, logs map[string][]logRecord, epoch2 string) {
	t.Helper()
	const show = 10 // examples per problem
	sample := func(xs []string) string { return firstFew(xs, show) }

	// 1. The journal: the truth.
	truth := map[evKey]journalEvent{}
	perDevice := map[string][]journalEvent{}
	var refused, dupJournal int
	var journalOrder []string
	for _, e := range journal {
		if e.Kind != "connected" && e.Kind != "disconnected" {
			refused++
			continue
		}
		k := evKey{e.DeviceID, e.Sequence}
		if _, ok := truth[k]; ok {
			dupJournal++
			continue
		}
		truth[k] = e
		if p := perDevice[e.DeviceID]; len(p) > 0 && p[len(p)-1].Sequence >= e.Sequence {
			journalOrder = append(journalOrder, fmt.Sprintf("%s: %s after %s", e.DeviceID, counter(e.Sequence), counter(p[len(p)-1].Sequence)))
		}
		perDevice[e.DeviceID] = append(perDevice[e.DeviceID], e)
	}
	epochs := map[string]int{}
	for k := range truth {
		epochs[epochOf(k.seq)]++
	}
	t.Logf("journal: %d connection events (%d refusals, %d duplicate records), epochs %v", len(truth), refused, dupJournal, epochs)
	if len(journalOrder) > 0 {
		t.Errorf("journal: %d records out of sequence order per device: %s", len(journalOrder), sample(journalOrder))
	}

	// 2. The journal against the clients: every acknowledged session has
	// its connected record; generation 2 ended every session cleanly, so
	// each has its disconnected record as well.
	var lost1, lost2, missDisc2, extra []string
	var sessions1, sessions2, conn1, cutByCrash, unacked int
	var notClosed []string
	for _, d := range devs {
		var c1, c2, d2 int
		evs := perDevice[d.id]
		for _, e := range evs {
			switch {
			case epochOf(e.Sequence) != epoch2 && e.Kind == "connected":
				c1++
			case epochOf(e.Sequence) == epoch2 && e.Kind == "connected":
				c2++
			case epochOf(e.Sequence) == epoch2 && e.Kind == "disconnected":
				d2++
			}
		}
		// The last generation-1 record of a device whose session the
		// crash cut is "connected"; the restarted hub must close it first
		// thing: its first generation-2 record is a disconnect, reason
		// hub-restart.
		lastGen1Connected := false
		for i := len(evs) - 1; i >= 0; i-- {
			if epochOf(evs[i].Sequence) != epoch2 {
				lastGen1Connected = evs[i].Kind == "connected"
				if lastGen1Connected {
					cutByCrash++
					if i+1 >= len(evs) || evs[i+1].Kind != "disconnected" || evs[i+1].Reason != "hub-restart" {
						notClosed = append(notClosed, d.id)
					}
				}
				break
			}
		}
		sessions1 += d.sessions[1]
		sessions2 += d.sessions[2]
		conn1 += c1
		if c1 < d.sessions[1] {
			lost1 = append(lost1, fmt.Sprintf("%s: %d sessions acknowledged, %d connected records", d.id, d.sessions[1], c1))
		}
		if c2 < d.sessions[2] {
			lost2 = append(lost2, fmt.Sprintf("%s: %d sessions acknowledged, %d connected records", d.id, d.sessions[2], c2))
		}
		if d2 < d.sessions[2] {
			missDisc2 = append(missDisc2, fmt.Sprintf("%s: %d sessions, %d disconnected records", d.id, d.sessions[2], d2))
		}
		if c1 == d.sessions[1]+1 && lastGen1Connected {
			unacked++ // stored, then killed before its CONNACK reached the client
		} else if c1 > d.sessions[1] || c2 > d.sessions[2] {
			extra = append(extra, fmt.Sprintf("%s: connected records %d/%d for %d/%d acknowledged sessions", d.id, c1, c2, d.sessions[1], d.sessions[2]))
		}
	}
	t.Logf("clients: %d sessions acknowledged before the kill (%d connected records of that generation: %d stored but killed before the CONNACK reached the client), %d after; "+
		"%d devices' last record before the kill is 'connected' (session cut by the crash, closed at restart as hub-restart)",
		sessions1, conn1, unacked, sessions2, cutByCrash)
	if len(notClosed) > 0 {
		t.Errorf("%d sessions cut by the crash were not closed (disconnected, hub-restart) when the hub started again: %s", len(notClosed), sample(notClosed))
	}
	if len(lost1) > 0 {
		t.Errorf("connects lost in the crash: %d sessions the hub acknowledged (CONNACK 0) before the kill have no connected record in the journal: %s",
			len(lost1), sample(lost1))
	}
	if len(lost2) > 0 {
		t.Errorf("after the restart, %d devices have fewer connected records than acknowledged sessions: %s", len(lost2), sample(lost2))
	}
	if len(missDisc2) > 0 {
		t.Errorf("after the restart, %d devices have fewer disconnected records than closed sessions: %s", len(missDisc2), sample(missDisc2))
	}
	if len(extra) > 0 {
		t.Errorf("%d devices have more connected records than sessions the clients saw: %s", len(extra), sample(extra))
	}

	// 3. Deliveries against the journal.
	got := rc.snapshot()
	posts, rejected, validations, bad := rc.counts()
	idKey := map[string]evKey{}
	deliveredKeys := map[evKey]int{}
	lastSeq := map[string]string{}
	var dups, maxCount, refusedThenDelivered, countReset int
	var idClash, phantom, wrongType, outOfOrder []string
	for _, e := range got {
		k := evKey{e.Device, e.Seq}
		if prev, ok := idKey[e.ID]; ok {
			dups++
			if prev != k {
				idClash = append(idClash, fmt.Sprintf("id %s for %v and %v", e.ID, prev, k))
			}
			continue
		}
		idKey[e.ID] = k
		deliveredKeys[k]++
		if deliveredKeys[k] > 1 {
			idClash = append(idClash, fmt.Sprintf("%s %s delivered under two ids", e.Device, e.Seq))
		}
		var n int
		fmt.Sscan(e.DeliveryCount, &n)
		maxCount = max(maxCount, n)
		if rc.wasRefused(e.ID) {
			refusedThenDelivered++
			if n == 0 {
				countReset++
			}
		}
		j, ok := truth[k]
		if !ok {
			phantom = append(phantom, fmt.Sprintf("%s %s %s", e.Device, e.Type, e.Seq))
			continue
		}
		if want := "Microsoft.Devices.Device" + strings.ToUpper(j.Kind[:1]) + j.Kind[1:]; e.Type != want {
			wrongType = append(wrongType, fmt.Sprintf("%s %s: %s, journal says %s", e.Device, e.Seq, e.Type, j.Kind))
		}
		if prev := lastSeq[e.Device]; prev != "" && e.Seq <= prev {
			outOfOrder = append(outOfOrder, fmt.Sprintf("%s: %s arrived after %s", e.Device, counter(e.Seq), counter(prev)))
		}
		if e.Seq > lastSeq[e.Device] {
			lastSeq[e.Device] = e.Seq
		}
	}
	var missing []string
	missingByEpoch := map[string]int{}
	for k, j := range truth {
		if deliveredKeys[k] == 0 {
			missingByEpoch[epochOf(k.seq)]++
			missing = append(missing, fmt.Sprintf("%s %s %s (%s, %s)", k.dev, j.Kind, counter(k.seq), j.Time.Format("15:04:05.000"), j.Reason))
		}
	}
	t.Logf("receiver: %d events in %d POSTs answered 200 (%d POSTs refused with 503 while down, %d validation handshakes, %d bad bodies); "+
		"%d distinct events, %d duplicates (same event id again), highest aeg-delivery-count %d",
		len(got), posts-rejected, rejected, validations, bad, len(idKey), dups, maxCount)
	if countReset > 0 {
		t.Logf("retry state after the restart: %d of %d events refused (503) before the kill came back with aeg-delivery-count 0 "+
			"(the engine does not carry attempts across a restart)", countReset, refusedThenDelivered)
	}
	t.Logf("COUNT: journal %d, delivered %d distinct, missing %d %v, not in the journal %d, out of order %d",
		len(truth), len(idKey), len(missing), missingByEpoch, len(phantom), len(outOfOrder))
	if len(missing) > 0 {
		t.Errorf("%d journalled connection events were never delivered: %s", len(missing), sample(missing))
	}
	if len(phantom) > 0 {
		t.Errorf("%d delivered events are not in the journal: %s", len(phantom), sample(phantom))
	}
	if len(outOfOrder) > 0 {
		t.Errorf("%d deliveries out of sequence order per device: %s", len(outOfOrder), sample(outOfOrder))
	}
	if len(wrongType) > 0 {
		t.Errorf("%d deliveries of the wrong event type: %s", len(wrongType), sample(wrongType))
	}
	if len(idClash) > 0 {
		t.Errorf("event ids not stable: %s", sample(idClash))
	}

	// 4. The Connections log against the journal: every event in it, and
	// no record twice (the log writer's exactly-once across the kill: the
	// journal redelivers what was stored but not acked, and the store
	// skips the _ItemIds it holds).
	inLog := map[evKey]bool{}
	itemIDs := map[string]int{}
	var doubled []string
	for dev, recs := range logs {
		for _, r := range recs {
			if r.SequenceNumber != "" {
				inLog[evKey{dev, r.SequenceNumber}] = true
			}
			if itemIDs[r.ItemID]++; itemIDs[r.ItemID] == 2 {
				doubled = append(doubled, fmt.Sprintf("%s %s %s", dev, r.OperationName, r.ItemID))
			}
		}
	}
	if len(doubled) > 0 {
		sort.Strings(doubled)
		t.Errorf("%d Connections log records stored twice: %s", len(doubled), sample(doubled))
	}
	var notLogged, notJournalled []string
	for k := range truth {
		if !inLog[k] {
			notLogged = append(notLogged, fmt.Sprintf("%s %s", k.dev, counter(k.seq)))
		}
	}
	for k := range inLog {
		if _, ok := truth[k]; !ok {
			notJournalled = append(notJournalled, fmt.Sprintf("%s %s", k.dev, counter(k.seq)))
		}
	}
	sort.Strings(notLogged)
	if len(notLogged) > 0 || len(notJournalled) > 0 {
		t.Errorf("Connections log and journal differ: %d journal events not in the log (%s), %d log records not in the journal (%s)",
			len(notLogged), sample(notLogged), len(notJournalled), sample(notJournalled))
	}
}
