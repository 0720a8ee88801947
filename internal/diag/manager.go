package diag

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/connlog"
)

// Options configure NewManager.
type Options struct {
	JS    jetstream.JetStream // the journal's
	NC    *nats.Conn          // the journal's connection, for NATS destinations
	Store Store
	// Workspace is the embedded log store.
	Workspace connlog.Sink
	// WorkspaceDurable names the workspace's consumers (default
	// connlog.DefaultDurable). Each node of a cluster keeps its own log
	// store from the whole journal, so each has its own.
	WorkspaceDurable string
	// Node, on a cluster, is this node's name: each node keeps its own
	// archives from the whole journal (its own disk, as its workspace),
	// on consumers named for it. A NATS destination's consumer is one
	// for the cluster, so each record is published once.
	Node string
	// WorkspaceRetention is the hub's retention (--log-retention), used
	// by settings whose workspace retention is 0; negative keeps records.
	WorkspaceRetention time.Duration
	// ArchiveDir holds one directory per setting with an archive.
	ArchiveDir string
	Resource   connlog.Resource
	Logger     *slog.Logger
	// Now is the retention clock; default time.Now.
	Now func() time.Time
	// MaxWait and RetentionEvery tune the writers (connlog.WriterOptions);
	// zero: connlog's defaults.
	MaxWait        time.Duration
	RetentionEvery time.Duration
}

// Manager applies diagnostic settings: it keeps one connlog.Writer (one
// durable journal consumer per category) per destination, so every
// destination receives its records at least once, in journal order, and
// progresses on its own (a failing archive disk does not hold up the
// workspace). Changes apply at once, without a restart: a destination
// whose routing changed is restarted on the same consumer (nothing is
// lost or repeated), a new one starts with the journal's next record, and
// the consumers of a removed one are deleted.
//
// The settings in force are the Store's, applied from its watch
// (watch.go): a change made through any node of a cluster reaches every
// node's Manager, in revision order, and a single hub runs the same code.
// A write through this Manager returns once this node's watch applied it.
//
// Durable consumers: the workspace keeps connlog's "connlog" (at the
// first start it reads the whole journal, as before settings existed);
// archives and NATS destinations use "diag-<setting>-archive" (on a
// cluster "diag-<setting>-archive-<node>") and "diag-<setting>-nats". On TETHER_OPS, which holds the four operation
// categories, each category has its own consumer: the name followed by
// "-<category>" (connlog.ConsumerName), so routing one category more or
// less never touches the others' positions.
type Manager struct {
	o   Options
	log *slog.Logger

	writes sync.Mutex // serialises this node's writes
	mu     sync.Mutex // guards what follows
	routes map[string]*route
	w      watchState
}

// route is one running destination.
type route struct {
	spec    routeSpec
	w       *connlog.Writer
	archive *archiveSink
}

// routeSpec is what a destination is: equal specs need no restart.
type routeSpec struct {
	kind       string // "workspace", "archive", "nats"
	setting    string // the setting's key (archive, nats)
	durable    string
	categories string        // concrete categories, sorted, comma-separated
	retention  time.Duration // negative: keep
	subject    string
	streamDays int
}

// NewManager checks o; Start applies the stored settings.
func NewManager(o Options) (*Manager, error) {
	if o.JS == nil || o.NC == nil || o.Store == nil || o.Workspace == nil || o.ArchiveDir == "" {
		return nil, errors.New("diag: a Manager needs the journal (JS, NC), a settings Store, the workspace and an archive directory")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Manager{o: o, log: o.Logger.With("component", "diag"), routes: map[string]*route{}, w: newWatchState()}, nil
}

// Stop ends the watch, lets the destinations catch up with the journal
// (at most 3 s, so a clean shutdown's last records arrive) and stops
// them.
func (m *Manager) Stop(ctx context.Context) error {
	m.stopWatch()
	m.mu.Lock()
	defer m.mu.Unlock()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if lag, err := m.lag(ctx); err != nil || lag == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var errs []error
	for id, r := range m.routes {
		errs = append(errs, r.stop(ctx))
		delete(m.routes, id)
	}
	return errors.Join(errs...)
}

// Lag is the journal messages not yet delivered to every destination,
// summed over them.
func (m *Manager) Lag(ctx context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lag(ctx)
}

func (m *Manager) lag(ctx context.Context) (uint64, error) {
	var total uint64
	for _, r := range m.routes {
		n, err := r.w.Lag(ctx)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// effective is the stored settings, or the default when none is stored.
func (m *Manager) effective(ctx context.Context) ([]Setting, error) {
	list, err := m.o.Store.List(ctx)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return []Setting{Default()}, nil
	}
	return list, nil
}

// List returns the settings in force: the stored ones, or the built-in
// default.
func (m *Manager) List(ctx context.Context) ([]Setting, error) { return m.effective(ctx) }

// Get returns a setting in force, or ErrNotFound.
func (m *Manager) Get(ctx context.Context, name string) (Setting, error) {
	s, err := m.o.Store.Get(ctx, name)
	if errors.Is(err, ErrNotFound) && strings.EqualFold(name, DefaultName) {
		if list, lerr := m.o.Store.List(ctx); lerr == nil && len(list) == 0 {
			return Default(), nil
		}
	}
	return s, err
}

// Create validates, stores and applies a new setting; ErrExists if the
// name is taken (the built-in default's name is free to take).
func (m *Manager) Create(ctx context.Context, s Setting) (Setting, error) {
	return m.write(ctx, s, false)
}

// Update validates, stores and applies s in place of the setting of its
// name; ErrNotFound if there is none (updating the built-in default
// stores it).
func (m *Manager) Update(ctx context.Context, s Setting) (Setting, error) {
	return m.write(ctx, s, true)
}

func (m *Manager) write(ctx context.Context, s Setting, replace bool) (Setting, error) {
	if err := s.Validate(); err != nil {
		return Setting{}, err
	}
	m.writes.Lock()
	defer m.writes.Unlock()
	if replace {
		if _, err := m.Get(ctx, s.Name); err != nil {
			return Setting{}, err
		}
	}
	// A stream that cannot be made (its subject overlaps another stream)
	// refuses the setting before it is stored.
	if n := s.NATS; n != nil && n.RetentionDays > 0 {
		if err := ensureStream(ctx, m.o.JS, s.Key(), n.Subject, n.RetentionDays); err != nil {
			return Setting{}, &ValidationError{Errors: []FieldError{{"nats.subject", err.Error()}}}
		}
	}
	var err error
	if replace {
		err = m.o.Store.Put(ctx, s)
	} else {
		err = m.o.Store.Create(ctx, s)
	}
	if err != nil {
		return Setting{}, err
	}
	return s, m.awaitApplied(ctx, s.Key())
}

// Delete removes a stored setting and stops its destinations (what they
// hold stays: archive files, stream messages, workspace records).
// ErrBuiltIn for the default while it is built in, else ErrNotFound.
func (m *Manager) Delete(ctx context.Context, name string) error {
	m.writes.Lock()
	defer m.writes.Unlock()
	err := m.o.Store.Delete(ctx, name)
	if errors.Is(err, ErrNotFound) {
		if s, gerr := m.Get(ctx, name); gerr == nil && s.BuiltIn {
			return ErrBuiltIn
		}
	}
	if err != nil {
		return err
	}
	return m.awaitApplied(ctx, strings.ToLower(name))
}

// plan turns settings into the destinations they need, by id.
func (m *Manager) plan(settings []Setting) map[string]routeSpec {
	out := map[string]routeSpec{}
	var ws *routeSpec
	var wsCats []string
	for _, s := range settings {
		cats := concrete(s)
		if s.Workspace != nil {
			keep := m.o.WorkspaceRetention
			if s.Workspace.RetentionDays > 0 {
				keep = days(s.Workspace.RetentionDays)
			}
			if ws == nil {
				ws = &routeSpec{kind: "workspace", durable: m.workspaceDurable(), retention: keep}
			} else if keep < 0 || ws.retention < 0 {
				ws.retention = -1
			} else {
				ws.retention = max(ws.retention, keep)
			}
			wsCats = append(wsCats, cats...)
		}
		joined := strings.Join(cats, ",")
		if a := s.Archive; a != nil {
			keep := time.Duration(-1)
			if a.RetentionDays > 0 {
				keep = days(a.RetentionDays)
			}
			out["archive/"+s.Key()] = routeSpec{kind: "archive", setting: s.Key(), durable: m.archiveDurable(s.Key()),
				categories: joined, retention: keep}
		}
		if n := s.NATS; n != nil {
			out["nats/"+s.Key()] = routeSpec{kind: "nats", setting: s.Key(), durable: "diag-" + s.Key() + "-nats",
				categories: joined, retention: -1, subject: n.Subject, streamDays: n.RetentionDays}
		}
	}
	// The workspace always keeps the Administrative records, whatever the
	// settings say: the record of a change to the settings must not be
	// something the change can switch off (as Azure's Activity Log is
	// kept whatever the diagnostic settings).
	if ws == nil {
		ws = &routeSpec{kind: "workspace", durable: m.workspaceDurable(), retention: m.o.WorkspaceRetention}
	}
	wsCats = append(wsCats, connlog.CategoryAdministrative)
	slices.Sort(wsCats)
	ws.categories = strings.Join(slices.Compact(wsCats), ",")
	out["workspace"] = *ws
	return out
}

// concrete is the categories s routes, allLogs expanded, sorted.
func concrete(s Setting) []string {
	var out []string
	for _, c := range Categories {
		if s.Routes(c) {
			out = append(out, c)
		}
	}
	return out
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// reconcile makes the running destinations those settings need. At start
// the workspace's consumer, if new, reads the whole journal; every other
// new consumer starts with the next record.
func (m *Manager) reconcile(ctx context.Context, settings []Setting, atStart bool) error {
	want := m.plan(settings)
	var errs []error
	for id, r := range m.routes {
		spec, keep := want[id]
		if keep && spec == r.spec {
			continue
		}
		errs = append(errs, r.stop(ctx))
		delete(m.routes, id)
		old := strings.Split(r.spec.categories, ",")
		var gone []string
		for _, c := range old {
			if !keep || !slices.Contains(strings.Split(spec.categories, ","), c) {
				gone = append(gone, c)
			}
		}
		if len(gone) > 0 {
			errs = append(errs, connlog.DeleteConsumers(ctx, m.o.JS, r.spec.durable, gone...))
		}
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if m.routes[id] != nil {
			continue
		}
		spec := want[id]
		r, err := m.start(ctx, spec, !(atStart && spec.kind == "workspace"))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
			continue
		}
		m.routes[id] = r
		m.log.Info("diag: destination started", "destination", id, "categories", spec.categories, "retention", spec.retention)
	}
	return errors.Join(errs...)
}

// start builds and starts the writer of one destination.
func (m *Manager) start(ctx context.Context, spec routeSpec, deliverNew bool) (*route, error) {
	r := &route{spec: spec}
	var sink connlog.Sink
	switch spec.kind {
	case "workspace":
		sink = m.o.Workspace
	case "archive":
		r.archive = newArchiveSink(filepath.Join(m.o.ArchiveDir, spec.setting))
		sink = r.archive
	case "nats":
		ns := &natsSink{nc: m.o.NC, subject: spec.subject}
		if spec.streamDays > 0 {
			if err := ensureStream(ctx, m.o.JS, spec.setting, spec.subject, spec.streamDays); err != nil {
				return nil, err
			}
			ns.js = m.o.JS
		}
		sink = ns
	}
	w, err := connlog.NewWriter(connlog.WriterOptions{
		JS: m.o.JS, Store: sink, Resource: m.o.Resource, Logger: m.o.Logger,
		Durable: spec.durable, Categories: strings.Split(spec.categories, ","), DeliverNew: deliverNew,
		MaxWait: m.o.MaxWait, Retention: spec.retention, RetentionEvery: m.o.RetentionEvery, Now: m.o.Now,
	})
	if err == nil {
		err = w.Start(ctx)
	}
	if err != nil {
		if r.archive != nil {
			r.archive.Close()
		}
		return nil, err
	}
	r.w = w
	return r, nil
}

func (r *route) stop(ctx context.Context) error {
	err := r.w.Stop(ctx)
	if r.archive != nil {
		r.archive.Close()
	}
	return err
}

func (m *Manager) archiveDurable(key string) string {
	if m.o.Node != "" {
		return "diag-" + key + "-archive-" + m.o.Node
	}
	return "diag-" + key + "-archive"
}

func (m *Manager) workspaceDurable() string {
	if m.o.WorkspaceDurable != "" {
		return m.o.WorkspaceDurable
	}
	return connlog.DefaultDurable
}
