package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/events/delivery"
	"github.com/tether-hub/tether/internal/journal"
)

// The delivery hand-over's exchange over a real NATS server: the node
// taking the job gets what a peer's ledger lists, skips at once a peer
// whose process is gone (nobody serves its subject), names a peer that
// does not answer in time; a node answers for its ledger only once its
// own engine has stopped.
func TestDeliveryLedgersAskedOverNATS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := journal.Open(ctx, journal.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	log := slog.New(slog.DiscardHandler)

	// n2 delivered seqs 7 and 9 of a consumer without their
	// acknowledgements stored (as its ledger would list them).
	listed := []delivery.Unconfirmed{{Consumer: "events-a", Stream: "TETHER_CONN", Seqs: []uint64{7, 9}}}
	peer, err := j.NC.Subscribe(unconfirmedSubject("n2"), func(m *nats.Msg) {
		b, _ := json.Marshal(listed)
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Unsubscribe()
	// n4 is up but never answers (cut off, or its engine never stops).
	mute, err := j.NC.Subscribe(unconfirmedSubject("n4"), func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Unsubscribe()

	start := time.Now()
	got, err := askLedgers(ctx, j.NC, delivery.NewLedger(), []string{"n2", "n3"}, 20*time.Second)
	if err != nil {
		t.Fatalf("n2 answers and n3 is gone: want no error, got %v", err)
	}
	if len(got) != 1 || got[0].Consumer != "events-a" || len(got[0].Seqs) != 2 || got[0].Seqs[1] != 9 {
		t.Fatalf("got %+v, want n2's list %+v", got, listed)
	}
	if d := time.Since(start); d >= 20*time.Second {
		t.Errorf("asking took %s: the gone node n3 was waited for", d)
	}
	got, err = askLedgers(ctx, j.NC, delivery.NewLedger(), []string{"n2", "n4"}, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "n4") || len(got) != 1 {
		t.Fatalf("n4 silent: want n2's list and an error naming n4, got %+v, %v", got, err)
	}

	// This node's answer waits for its engine's stop.
	var stopped atomic.Bool
	release := make(chan struct{})
	sub, err := serveLedger(j.NC, "n1", delivery.NewLedger(), func() { <-release; stopped.Store(true) }, log)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	answered := make(chan error, 1)
	go func() {
		_, err := askLedgers(ctx, j.NC, delivery.NewLedger(), []string{"n1"}, 20*time.Second)
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("answered (%v) while the engine was still stopping", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-answered; err != nil || !stopped.Load() {
		t.Fatalf("after the stop: %v (stopped %v)", err, stopped.Load())
	}
}
