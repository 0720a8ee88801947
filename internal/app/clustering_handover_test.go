package app

import (
	"context"
	"encoding/json"
	"fmt"
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
	sub, err := serveLedger(j.NC, "n1", delivery.NewLedger().Unconfirmed, func() { <-release; stopped.Store(true) }, log)
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

// A ledger whose list is larger than one NATS message may hold (the
// server's max_payload, 1 MB by default) is answered in pages: the node
// taking the job gets every entry, once, over several requests.
func TestDeliveryLedgerAnsweredInPagesPastMaxPayload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	j, err := journal.Open(ctx, journal.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	// 3 consumers × 2 streams × 40,000 sequence numbers of 8 digits: about
	// 2.2 MB of JSON.
	var full []delivery.Unconfirmed
	want := map[string]bool{}
	for _, c := range []string{"events-a", "events-b", "events-c"} {
		for _, s := range []string{"TETHER_CONN", "TETHER_TWIN"} {
			u := delivery.Unconfirmed{Consumer: c, Stream: s}
			for i := range uint64(40000) {
				seq := 10_000_000 + 3*i
				u.Seqs = append(u.Seqs, seq)
				want[fmt.Sprintf("%s/%s/%d", c, s, seq)] = true
			}
			full = append(full, u)
		}
	}
	if b, _ := json.Marshal(full); int64(len(b)) <= j.NC.MaxPayload() {
		t.Fatalf("the list is %d bytes, not past max_payload %d: the test needs more", len(b), j.NC.MaxPayload())
	}
	var pages atomic.Int32
	sub, err := serveLedger(j.NC, "n2", func() []delivery.Unconfirmed { pages.Add(1); return full }, func() {}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	got, err := askLedgers(ctx, j.NC, delivery.NewLedger(), []string{"n2"}, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, u := range got {
		for _, s := range u.Seqs {
			k := fmt.Sprintf("%s/%s/%d", u.Consumer, u.Stream, s)
			if !want[k] {
				t.Fatalf("%s listed twice or never in the ledger", k)
			}
			delete(want, k)
			n++
		}
	}
	if len(want) != 0 {
		t.Fatalf("%d entries received, %d missing", n, len(want))
	}
	if p := pages.Load(); p < 3 {
		t.Errorf("%d pages for about 2.2 MB at max_payload %d, want at least 3", p, j.NC.MaxPayload())
	}
}
