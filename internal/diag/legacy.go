package diag

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/connlog"
)

// Before session 12 every node of a cluster read a setting's archive
// from one shared consumer, "diag-<setting>-archive", so each node's
// archive got only part of the records; since then each node has its
// own, "diag-<setting>-archive-<node>" (archiveDurable). A shared
// consumer left by the earlier release would keep its messages (and the
// stream's interest) forever, nobody reading it: a cluster node deletes
// it at start for every setting the store holds. A single hub still
// uses that name and keeps it. During a rolling upgrade the nodes still
// on the earlier release lose their archive's consumer and recreate it
// at their next start, when they too are upgraded.

// dropSharedArchives deletes the shared archive consumers of the keys
// (called at start, on a cluster node only), logging those it found.
func (m *Manager) dropSharedArchives(ctx context.Context, keys []string) error {
	if m.o.Node == "" {
		return nil
	}
	var errs []error
	for _, key := range keys {
		legacy := "diag-" + key + "-archive"
		found, err := m.consumerExists(ctx, legacy)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !found {
			continue
		}
		if err := connlog.DeleteConsumers(ctx, m.o.JS, legacy); err != nil {
			errs = append(errs, err)
			continue
		}
		m.log.Info("diag: removed the archive consumer the cluster's nodes shared before each node had its own", "setting", key, "consumer", legacy, "now", m.archiveDurable(key))
	}
	return errors.Join(errs...)
}

// consumerExists reports whether any category has a consumer of a
// Writer with durable.
func (m *Manager) consumerExists(ctx context.Context, durable string) (bool, error) {
	for _, c := range Categories {
		_, err := m.o.JS.Consumer(ctx, connlog.StreamOf(c), connlog.ConsumerName(durable, c))
		switch {
		case err == nil:
			return true, nil
		case !errors.Is(err, jetstream.ErrConsumerNotFound):
			return false, err
		}
	}
	return false, nil
}

// heldKeys is every key the Store holds (called with m.mu).
func (m *Manager) heldKeys() []string {
	return slices.Sorted(maps.Keys(m.w.held))
}
