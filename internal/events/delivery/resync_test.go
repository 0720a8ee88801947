package delivery

import (
	"errors"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/events/kvstore"
)

// A store that signals its changes (the KV store) is listed when another
// writer (another node) changes a subscription, at once rather than at
// the next ResyncInterval, and not while nothing changes.
func TestResyncFollowsStoreChanges(t *testing.T) {
	v := newEnv(t)
	kv, err := kvstore.New(v.ctx, v.j.JS, kvstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v.opts.Store = kv
	v.opts.ResyncInterval = time.Minute
	e := v.start()
	time.Sleep(time.Second)
	if n := e.resyncs.Load(); n != 0 {
		t.Fatalf("an unchanged store was listed %d times, want 0", n)
	}
	rc := newReceiver(t, v.clock, nil)
	s := events.Subscription{Name: "elsewhere", Destination: events.Destination{Properties: events.DestinationProperties{EndpointURL: rc.URL}}}
	s.ApplyDefaults()
	s.ProvisioningState = events.Succeeded
	if _, err := kv.Create(v.ctx, s); err != nil { // no Reload: written behind the engine's back
		t.Fatal(err)
	}
	eventually(t, "the new subscription running", func() bool {
		_, err := e.runner("elsewhere")
		return err == nil
	})
	if err := kv.Delete(v.ctx, "elsewhere", 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted subscription stopped", func() bool {
		_, err := e.runner("elsewhere")
		return errors.Is(err, ErrNotRunning)
	})
}
