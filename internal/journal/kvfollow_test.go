package journal

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// FollowKV hands over the stored values, the caught-up marker and later
// writes in order, and ends (stopping the watch) when fn says so.
func TestFollowKV(t *testing.T) {
	j := open(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := j.AlertRules.Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	w, err := j.AlertRules.WatchAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		FollowKV(ctx, w, func(e jetstream.KeyValueEntry) bool {
			if e == nil {
				got = append(got, "caught-up")
				if _, err := j.AlertRules.Put(ctx, "b", []byte("2")); err != nil {
					t.Error(err)
					return false
				}
				return true
			}
			got = append(got, e.Key()+"="+string(e.Value()))
			return e.Key() != "b"
		})
	}()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("FollowKV did not end when fn returned false")
	}
	if want := "[a=1 caught-up b=2]"; fmt.Sprint(got) != want {
		t.Fatalf("followed %s, want %s", got, want)
	}
	// The watch was stopped: its channel closes.
	for range w.Updates() {
	}
}
