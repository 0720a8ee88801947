package app

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/registry"
)

// onPolicyChange is the registry's OnPolicyChange: the hub log records
// who changed which policy (never a key), and the bootstrap file follows
// the owner's keys.
func (a *App) onPolicyChange(c registry.PolicyChange) {
	attrs := []any{"policy", c.Name, "op", c.Op, "rights", c.Rights.String(), "caller", c.Caller}
	if c.Op == registry.PolicyKeyRenewed {
		attrs = append(attrs, "key", c.Slot)
	}
	a.log.Info("shared access policy changed", attrs...)
	if c.Name == ownerPolicy {
		a.syncBootstrap()
	}
}

// watchPolicies reloads the registry's policies when the bucket changes
// under it: another hub node on the same NATS renewed a key, and this
// node must refuse the old one and accept the new one too. Its own writes
// come back here as well; reloading them changes nothing.
func (a *App) watchPolicies(ctx context.Context) error {
	wctx, cancel := context.WithCancel(context.Background())
	w, err := a.journal.Policies.WatchAll(wctx, jetstream.UpdatesOnly())
	if err != nil {
		cancel()
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			// A burst (a renewal of several policies) is one reload.
			drain(w.Updates(), 20*time.Millisecond)
			rctx, rcancel := context.WithTimeout(wctx, 10*time.Second)
			err := a.registry.ReloadPolicies(rctx)
			rcancel()
			if err != nil {
				if wctx.Err() == nil {
					a.log.Error("policies not reloaded after a change in the store", "err", err)
				}
				continue
			}
			a.syncBootstrap()
		}
	}()
	a.onStop(func(ctx context.Context) error {
		cancel()
		_ = w.Stop()
		select {
		case <-done:
		case <-ctx.Done():
		}
		return nil
	})
	return nil
}

// drain reads what arrives on ch within quiet of the previous value.
func drain(ch <-chan jetstream.KeyValueEntry, quiet time.Duration) {
	t := time.NewTimer(quiet)
	defer t.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
			t.Reset(quiet)
		case <-t.C:
			return
		}
	}
}
