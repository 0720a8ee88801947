package diag

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// The Manager applies the settings from the Store's watch, not from its
// own writes: on a cluster the Store is a replicated bucket that every
// node's API writes, and a node that applied only its own writes kept
// routing by settings the cluster had replaced (seen in a 3-node check:
// an archive-only setting made on node 1 left nodes 2 and 3 writing to
// their workspaces). The watch delivers every node's changes in revision
// order; a write through this node waits until the watch has applied it,
// so its caller sees the setting in force here, as before.

// applyTimeout bounds the consumer and stream calls of one change.
const applyTimeout = time.Minute

// watchState is what the watch has applied (guarded by Manager.mu).
type watchState struct {
	held     map[string]held  // by key: every key the Store holds
	results  map[string]error // by key: the last change's outcome
	watched  uint64           // the last revision applied
	progress chan struct{}    // closed (and replaced) when watched moves
	resync   map[string]bool  // keys seen by a reopened watch so far
	refused  uint64
	cancel   context.CancelFunc
	done     chan struct{}
}

// held is one key of the Store: the revision in force and its setting;
// setting nil when none of the key's revisions seen here was valid.
type held struct {
	rev     uint64
	setting *Setting
}

func newWatchState() watchState {
	return watchState{held: map[string]held{}, results: map[string]error{}, progress: make(chan struct{})}
}

// Start applies the stored settings (or the default), then follows the
// Store's changes until Stop.
func (m *Manager) Start(ctx context.Context) error {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ch, err := m.o.Store.Watch(wctx)
	if err != nil {
		cancel()
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for caught := false; !caught; {
		select {
		case c, ok := <-ch:
			if !ok {
				cancel()
				return errors.New("diag: the settings watch ended before it sent the stored settings")
			}
			caught = c.CaughtUp
			m.take(c)
		case <-ctx.Done():
			cancel()
			return fmt.Errorf("diag: reading the stored settings: %w", ctx.Err())
		}
	}
	if err := m.reconcile(ctx, m.inForce(), true); err != nil {
		cancel()
		return err
	}
	if err := m.dropSharedArchives(ctx, m.heldKeys()); err != nil {
		// Left behind, not lost: the next start tries again.
		m.log.Warn("diag: an archive consumer of an earlier release not removed", "err", err)
	}
	done := make(chan struct{})
	m.w.cancel, m.w.done = cancel, done
	go m.follow(wctx, ch, done)
	return nil
}

// stopWatch ends the watch and waits for its last change to be applied.
func (m *Manager) stopWatch() {
	m.mu.Lock()
	cancel, done := m.w.cancel, m.w.done
	m.w.cancel = nil
	m.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// follow applies the watch's changes, those queued together at once (the
// destinations are reconciled with the last state, not each between).
// A watch that ends before ctx is reopened; its contents replace what
// this node holds.
func (m *Manager) follow(ctx context.Context, ch <-chan Change, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-ctx.Done():
			return
		case c, ok := <-ch:
			if !ok {
				if ch = m.rewatch(ctx); ch == nil {
					return
				}
				continue
			}
			batch := []Change{c}
			for len(ch) > 0 {
				batch = append(batch, <-ch)
			}
			m.apply(ctx, batch)
		}
	}
}

// rewatch reopens the watch, retrying each second; nil once ctx ends.
func (m *Manager) rewatch(ctx context.Context) <-chan Change {
	for ctx.Err() == nil {
		m.log.Warn("diag: the settings watch ended; reopening it")
		ch, err := m.o.Store.Watch(ctx)
		if err == nil {
			m.mu.Lock()
			m.w.resync = map[string]bool{}
			m.mu.Unlock()
			return ch
		}
		m.log.Error("diag: reopening the settings watch", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

// apply takes a batch of changes and reconciles the destinations.
func (m *Manager) apply(ctx context.Context, batch []Change) {
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range batch {
		m.take(c)
	}
	if err := m.reconcile(ctx, m.inForce(), false); err != nil {
		m.log.Error("diag: the diagnostic settings in force are not fully applied on this node", "revision", m.w.watched, "err", err)
		for _, c := range batch {
			if c.Key != "" && m.w.results[c.Key] == nil {
				m.w.results[c.Key] = err
			}
		}
	}
	close(m.w.progress)
	m.w.progress = make(chan struct{})
}

// take records one change (called with m.mu). A value that is no valid
// setting is refused: the key's setting in force stays.
func (m *Manager) take(c Change) {
	m.w.watched = max(m.w.watched, c.Revision)
	if c.CaughtUp {
		if m.w.resync != nil {
			for k := range m.w.held {
				if !m.w.resync[k] {
					delete(m.w.held, k)
				}
			}
			m.w.resync = nil
		}
		return
	}
	if m.w.resync != nil {
		m.w.resync[c.Key] = true
	}
	if c.Deleted {
		delete(m.w.held, c.Key)
		m.w.results[c.Key] = nil
		return
	}
	err := c.Err
	if err == nil {
		err = c.Setting.Validate()
	}
	if err == nil && c.Setting.Key() != c.Key {
		err = fmt.Errorf("the setting %q is stored under key %q", c.Setting.Name, c.Key)
	}
	h := m.w.held[c.Key]
	if err != nil {
		m.w.refused++
		m.w.results[c.Key] = fmt.Errorf("diag: revision %d of setting %q refused on this node: %w", c.Revision, c.Key, err)
		kept := "none"
		if h.setting != nil {
			kept = fmt.Sprintf("revision %d", h.rev)
		}
		m.log.Error("diag: a stored diagnostic setting is not valid and is not applied on this node; the setting in force here under that name ("+kept+") is kept",
			"setting", c.Key, "revision", c.Revision, "err", err)
		m.w.held[c.Key] = h // the key is held: the default stays off
		return
	}
	s := c.Setting
	m.w.held[c.Key] = held{rev: c.Revision, setting: &s}
	m.w.results[c.Key] = nil
}

// inForce is the settings to apply (called with m.mu): the valid ones
// held, by key, or the built-in default while the Store holds none.
func (m *Manager) inForce() []Setting {
	if len(m.w.held) == 0 {
		return []Setting{Default()}
	}
	var out []Setting
	for _, k := range slices.Sorted(maps.Keys(m.w.held)) {
		if s := m.w.held[k].setting; s != nil {
			out = append(out, *s)
		}
	}
	return out
}

// awaitApplied waits until this node's watch has applied the Store's
// latest revision (a write just made is at most that) and returns the
// outcome for key.
func (m *Manager) awaitApplied(ctx context.Context, key string) error {
	rev, err := m.o.Store.Revision(ctx)
	if err != nil {
		return fmt.Errorf("diag: the change is stored, but whether this node applied it is unknown: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	for {
		m.mu.Lock()
		watched, progress, res := m.w.watched, m.w.progress, m.w.results[key]
		m.mu.Unlock()
		if watched >= rev {
			if res != nil {
				return fmt.Errorf("diag: the change is stored but not fully applied on this node: %w", res)
			}
			return nil
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return fmt.Errorf("diag: the change is stored (revision %d) but this node has applied only revision %d so far: %w", rev, watched, ctx.Err())
		}
	}
}

// Refused counts the stored revisions this node refused as not valid.
func (m *Manager) Refused() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.w.refused
}

// Applied is the Store revision this node's watch has applied.
func (m *Manager) Applied() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.w.watched
}
