package journal

import (
	"context"
	"testing"
	"time"
)

// A Watch wakes on a publish on its subjects (not on others'), falls back
// after its period, and gives up when its context ends.
func TestWatch(t *testing.T) {
	j := open(t, t.TempDir())
	w, err := NewWatch(j.NC, StreamSubjects(StreamConn))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()

	if _, err := j.JS.Publish(ctx, RegistrySubject("d1", "created"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if _, err := j.JS.Publish(ctx, ConnSubject("d1", "connected"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	woke := make(chan bool, 1)
	go func() { woke <- w.Wait(ctx, time.Hour) }()
	select {
	case live := <-woke:
		if !live {
			t.Fatal("Wait reported its context ended")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a publish on the stream did not wake the Wait")
	}

	// Woken, the reader fetched and found nothing (a store slower than its
	// fetch): the next Wait ends soon even with a long fallback, and the
	// one after it later.
	began := time.Now()
	if !w.Wait(ctx, time.Hour) {
		t.Fatal("Wait reported its context ended")
	}
	if d := time.Since(began); d < recheckFirst || d > 10*time.Second {
		t.Fatalf("the Wait after a woken one took %s, want %s", d, recheckFirst)
	}
	began = time.Now()
	if !w.Wait(ctx, time.Hour) {
		t.Fatal("Wait reported its context ended")
	}
	if d := time.Since(began); d < 2*recheckFirst || d > 10*time.Second {
		t.Fatalf("the second re-look took %s, want %s", d, 2*recheckFirst)
	}
	for w.recheck != 0 { // the re-looks stop at the fallback
		w.Wait(ctx, 3*recheckFirst)
	}

	// Nothing more on TETHER_CONN (a registry change does not count): the
	// fallback ends the Wait.
	if _, err := j.JS.Publish(ctx, RegistrySubject("d1", "updated"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	if !w.Wait(ctx, 50*time.Millisecond) {
		t.Fatal("Wait reported its context ended")
	}
	if time.Since(began) < 50*time.Millisecond {
		t.Fatal("a publish on another stream woke the Wait")
	}

	cctx, cancel := context.WithCancel(ctx)
	go func() { woke <- w.Wait(cctx, time.Hour) }()
	cancel()
	select {
	case live := <-woke:
		if live {
			t.Fatal("Wait of a cancelled context reported it live")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelling did not end the Wait")
	}
}

func TestStreamSubjects(t *testing.T) {
	for stream, subject := range map[string]string{StreamConn: "tether.conn.>", StreamRegistry: "tether.registry.>",
		StreamOps: "tether.ops.>", StreamInsights: "tether.insights.>", StreamTelemetry: "tether.telemetry.>", "OTHER": ""} {
		if got := StreamSubjects(stream); got != subject {
			t.Errorf("StreamSubjects(%s) = %q, want %q", stream, got, subject)
		}
	}
}
