package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/testnet"
)

// A change feed that ends (its subscription closed, as when the
// connection goes or the consumer cannot be recreated) is opened again,
// after failed attempts too; the keys deleted while no feed ran leave the
// follower's view, and later changes reach it.
func TestFollowReopensAnEndedFeed(t *testing.T) {
	srv := startServer(t)
	_, js := testnet.JetStreamClient(t, srv.ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "follow_test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	view := map[string]string{}
	var current jetstream.KeyWatcher
	refuse, opens, refused := false, 0, 0
	open := func(ctx context.Context) (jetstream.KeyWatcher, error) {
		mu.Lock()
		defer mu.Unlock()
		if refuse {
			refused++
			return nil, errors.New("no stream leader (test)")
		}
		w, err := kv.WatchAll(ctx)
		if err == nil {
			current, opens = w, opens+1
		}
		return w, err
	}
	apply := func(e jetstream.KeyValueEntry) {
		mu.Lock()
		defer mu.Unlock()
		if e.Operation() == jetstream.KeyValuePut {
			view[e.Key()] = string(e.Value())
		} else {
			delete(view, e.Key())
		}
	}
	present := func(keys map[string]bool) {
		mu.Lock()
		defer mu.Unlock()
		for k := range view {
			if !keys[k] {
				delete(view, k)
			}
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); Follow(ctx, testLogger(), "follow_test", nil, open, apply, present) }()
	want := func(exp map[string]string) {
		t.Helper()
		eventually(t, 30*time.Second, func() error {
			mu.Lock()
			defer mu.Unlock()
			if fmt.Sprint(view) != fmt.Sprint(exp) {
				return fmt.Errorf("view %v, want %v", view, exp)
			}
			return nil
		})
	}
	want(map[string]string{"a": "1"})

	// The feed ends, and cannot be opened for a while; meanwhile "a" is
	// deleted (a delete marker the new feed will not deliver once purged)
	// and "b" written.
	mu.Lock()
	refuse = true
	w := current
	mu.Unlock()
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if refused < 2 {
			return fmt.Errorf("%d refused openings, want 2", refused)
		}
		return nil
	})
	if err := kv.Purge(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := kv.PurgeDeletes(ctx, jetstream.DeleteMarkersOlderThan(-1)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "b", []byte("2")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	refuse = false
	mu.Unlock()
	want(map[string]string{"b": "2"})
	if _, err := kv.Put(ctx, "c", []byte("3")); err != nil {
		t.Fatal(err)
	}
	want(map[string]string{"b": "2", "c": "3"})
	mu.Lock()
	if opens != 2 {
		t.Errorf("feed opened %d times, want 2", opens)
	}
	mu.Unlock()
	cancel()
	<-done
}
