package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/alert"
	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/cluster"
	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/journal"
)

// AlertHistoryFile is the alert transitions' file inside the data dir.
const AlertHistoryFile = "alerts/history.jsonl"

// alertService runs the alert rules in force in the cluster (one node
// alone is a cluster of one; alertrules.go): the manager evaluates, the
// dispatcher notifies, the history file remembers.
type alertService struct {
	file      string // this node's --rules file ("" without)
	node      string // names this node in the bucket's entries
	clustered bool   // the start policy (alertrules.go)
	kv        jetstream.KeyValue
	retry     func(context.Context, func(context.Context) error) error
	opts      func(file string) alert.LoadOptions
	mgr       *alert.Manager
	disp      *alert.Dispatcher
	hist      *alert.FileHistory
	ledger    *alertLedger // the cluster's history and notification record; nil on a single hub
	log       *slog.Logger
	refused   atomic.Uint64 // revisions and files that did not load

	mu   sync.Mutex // one reload or apply at a time
	seen uint64     // the newest bucket revision considered
	// source is where the rules in force came from (nil: none); read
	// without mu, so a scrape does not wait for a reload's write.
	source atomic.Pointer[api.ReloadResult]
}

var _ api.AlertService = (*alertService)(nil)

// startAlerts opens the history, puts the rules of the start in force
// (a rules file with problems stops the start; alertrules.go) and starts
// evaluating and watching the cluster's rules. It runs after the metric
// and log sources exist; its stop runs before the broker's, so the
// shutdown's disconnects fire nothing.
func (a *App) startAlerts(ctx context.Context) error {
	now := time.Now()
	hist, skipped, err := alert.OpenFileHistory(filepath.Join(a.cfg.DataDir, AlertHistoryFile), alert.DefaultRetention, now)
	if err != nil {
		return fmt.Errorf("alert history: %w", err)
	}
	if skipped > 0 {
		a.log.Warn("alert history: unreadable lines dropped (a crash during a write?)", "lines", skipped)
	}
	log := a.log.With("component", "alerts")
	disp := alert.NewDispatcher(alert.DispatcherOptions{
		Target:  alert.Target{ResourceID: events.Resource{}.ID(a.cfg.HubName)},
		Publish: a.publishAlert,
		Logger:  log,
	})
	// A single hub notifies at once; a cluster's nodes settle each
	// transition against the cluster's record first (alertledger.go).
	notify, ledger := alert.NotifyFunc(disp.Notify), a.newAlertLedger(disp, log)
	if ledger != nil {
		notify = ledger.note
	}
	mgr, err := alert.NewManager(alert.Options{
		Metrics: a.alertMetricSource(),
		Logs:    a.alertLogSource(),
		Notify:  notify,
		History: hist,
		Logger:  log,
		// The same on every node: an alert keeps its id when the alerts
		// lead moves between its Fired and its Resolved.
		IDSeed: events.Resource{}.ID(a.cfg.HubName),
	})
	if err != nil {
		hist.Close()
		return err
	}
	a.alerts = &alertService{file: a.cfg.RulesFile, node: a.nodeLabel(), clustered: a.cfg.Cluster.On(),
		kv: a.journal.AlertRules, retry: a.journal.UntilReady, opts: a.rulesLoadOptions,
		mgr: mgr, disp: disp, hist: hist, ledger: ledger, log: log}
	runCtx, cancel := context.WithCancel(context.Background())
	var watched <-chan struct{}
	err = a.alerts.start(ctx)
	if err == nil {
		watched, err = a.alerts.watch(runCtx)
	}
	if err == nil && ledger != nil {
		if err = ledger.start(ctx, a.journal.UntilReady); err != nil {
			cancel()
			<-watched
		}
	}
	if err != nil {
		cancel()
		disp.Close(ctx)
		hist.Close()
		return err
	}
	done := make(chan struct{})
	go func() { mgr.Run(runCtx); close(done) }()
	a.onStop(func(ctx context.Context) error {
		cancel()
		<-watched
		<-done
		// The ledger hands nothing more to the dispatcher; what it did
		// hand is sent, or marked unsent for the next leader, in Close.
		if ledger != nil {
			ledger.stop()
		}
		// Queued notifications get a moment to go out, not the whole
		// shutdown budget.
		dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
		defer dcancel()
		if err := disp.Close(dctx); err != nil {
			// Expected when a destination is down at shutdown; not a
			// failed stop.
			log.Warn("alert notifications abandoned at shutdown", "err", err)
		}
		return hist.Close()
	})
	if err := a.metrics.Register(newAlertMetrics(a.alerts)); err != nil {
		return fmt.Errorf("alert metrics: %w", err)
	}
	return nil
}

// newAlertLedger is a cluster node's alert ledger (nil on a single hub):
// it notifies through disp while this node leads the alerts job.
func (a *App) newAlertLedger(disp *alert.Dispatcher, log *slog.Logger) *alertLedger {
	n := a.cluster
	if n == nil {
		return nil
	}
	alive := func(ctx context.Context) (map[string]string, error) {
		live, err := n.Live(ctx)
		if err != nil {
			return nil, err
		}
		runs := map[string]string{}
		for node, l := range live {
			runs[node] = l.Boot
		}
		return runs, nil
	}
	return newAlertLedger(a.journal.Alerts, a.journal.AlertHistory, n.Name(), n.Boot(), func() bool { return n.Leads(cluster.JobAlerts) },
		alive, disp.NotifyDone, log)
}

// nodeLabel names this node in the rules bucket: its cluster name, or
// the host's name when alone.
func (a *App) nodeLabel() string {
	if a.cfg.Cluster.On() {
		return a.cfg.Cluster.NodeName
	}
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return a.cfg.HubName
}

// rulesLoadOptions are the checks of a rules file on this hub: the
// password from the environment, plus what the metric and log sources
// know. file names the source in messages.
func (a *App) rulesLoadOptions(file string) alert.LoadOptions {
	o := RulesCheckOptions(file)
	o.Getenv = os.LookupEnv
	return o
}

// publishAlert is the NATS action: a publish on the journal's
// connection, flushed so a failure is seen.
func (a *App) publishAlert(ctx context.Context, subject string, data []byte) error {
	if err := a.journal.NC.Publish(subject, data); err != nil {
		return err
	}
	return a.journal.NC.FlushWithContext(ctx)
}

// ReloadRules reads the rules file again on SIGHUP (the API reloads
// through the same alertService and records its own change), and records
// it as an Administrative operation of caller "SIGHUP".
func (a *App) ReloadRules(ctx context.Context) (api.ReloadResult, error) {
	start := time.Now()
	before := journal.Definition(api.AlertRulesDefinition(a.alerts.Rules(ctx)))
	res, err := a.alerts.Reload(ctx)
	op := journal.Operation{Category: journal.CategoryAdministrative, OperationName: journal.OpAlertRulesReload,
		Target: api.AlertRulesTarget, Caller: "SIGHUP", Status: http.StatusOK, Before: before,
		After: journal.Definition(api.AlertRulesDefinition(a.alerts.Rules(ctx))), DurationMs: time.Since(start).Milliseconds()}
	if err != nil {
		op.Status, op.ErrorCode, op.ErrorMessage = http.StatusBadRequest, "400004", err.Error()
		if errors.Is(err, api.ErrNoRulesFile) {
			op.Status, op.ErrorCode = http.StatusConflict, "409001"
		}
	}
	_ = a.RecordOperation(op)
	return res, err
}

// Alerts is the alert manager (for tests and the CLI banner).
func (a *App) Alerts() *alert.Manager { return a.alerts.mgr }

// Reload reads this node's rules file, checks it and publishes it to the
// cluster's bucket, then puts it in force here; the other nodes follow
// from their watches. Problems, or a bucket that does not take the
// write, change nothing anywhere.
func (s *alertService) Reload(ctx context.Context) (api.ReloadResult, error) {
	if s.file == "" {
		return api.ReloadResult{}, api.ErrNoRulesFile
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, cfg, err := s.readFile(time.Now())
	if err != nil {
		s.refused.Add(1)
		s.log.Error("alert rules not loaded; the rules in force are unchanged", "file", s.file, "err", err)
		return api.ReloadResult{}, err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rev, err := s.publish(pctx, p, false)
	if err != nil {
		err = fmt.Errorf("alert rules not published to the cluster (bucket %s); the rules in force are unchanged: %w", s.kv.Bucket(), err)
		s.log.Error(err.Error(), "file", s.file)
		return api.ReloadResult{}, err
	}
	res := api.ReloadResult{File: p.File, Rules: len(cfg.Rules), ActionGroups: len(cfg.ActionGroups), LoadedAt: p.LoadedAt, Revision: rev, LoadedBy: p.Node}
	if rev <= s.seen {
		// A newer revision from another node is in force already.
		return res, nil
	}
	if err := s.setConfig(cfg, p, rev); err != nil {
		return api.ReloadResult{}, err
	}
	s.log.Info("alert rules loaded and published to the cluster", "rules", p.describe(rev), "count", len(cfg.Rules), "action_groups", len(cfg.ActionGroups))
	return res, nil
}

// Source is where the rules in force came from.
func (s *alertService) Source(context.Context) *api.ReloadResult {
	src := s.source.Load()
	if src == nil {
		return nil
	}
	c := *src
	return &c
}

func (s *alertService) Rules(context.Context) []alert.RuleStatus { return s.mgr.Rules() }

// History is the cluster's (any node answers the same) or, on a single
// hub, the data dir's.
func (s *alertService) History(_ context.Context, q alert.HistoryQuery) []alert.Record {
	if s.ledger != nil {
		return s.ledger.History(q)
	}
	return s.mgr.History(q)
}

func (s *alertService) Destinations(context.Context) ([]alert.DestinationStats, uint64) {
	return s.disp.Stats()
}
