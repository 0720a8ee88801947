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
	"time"

	"github.com/tether-hub/tether/internal/alert"
	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/journal"
)

// AlertHistoryFile is the alert transitions' file inside the data dir.
const AlertHistoryFile = "alerts/history.jsonl"

// alertService runs the alert rules of the rules file: the manager
// evaluates, the dispatcher notifies, the history file remembers.
type alertService struct {
	file string
	opts func() alert.LoadOptions
	mgr  *alert.Manager
	disp *alert.Dispatcher
	hist *alert.FileHistory
	log  *slog.Logger

	mu   sync.Mutex // one reload at a time
	last api.ReloadResult
}

var _ api.AlertService = (*alertService)(nil)

// startAlerts opens the history, loads the rules file (a file with
// problems stops the start) and starts evaluating. It runs after the
// metric and log sources exist; its stop runs before the broker's, so
// the shutdown's disconnects fire nothing.
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
	mgr, err := alert.NewManager(alert.Options{
		Metrics: a.alertMetricSource(),
		Logs:    a.alertLogSource(),
		Notify:  a.clusterNotify(disp.Notify),
		History: hist,
		Logger:  log,
	})
	if err != nil {
		hist.Close()
		return err
	}
	a.alerts = &alertService{file: a.cfg.RulesFile, opts: a.rulesLoadOptions, mgr: mgr, disp: disp, hist: hist, log: log}
	if a.cfg.RulesFile != "" {
		if _, err := a.alerts.Reload(ctx); err != nil {
			disp.Close(ctx)
			hist.Close()
			return err
		}
	} else if err := mgr.SetRules(nil); err != nil { // resolves what was fired by rules no longer served
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { mgr.Run(runCtx); close(done) }()
	a.onStop(func(ctx context.Context) error {
		cancel()
		<-done
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

// rulesLoadOptions are the checks of a rules file on this hub: the
// password from the environment, plus what the metric and log sources
// know.
func (a *App) rulesLoadOptions() alert.LoadOptions {
	o := RulesCheckOptions(a.cfg.RulesFile)
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

func (s *alertService) Reload(_ context.Context) (api.ReloadResult, error) {
	if s.file == "" {
		return api.ReloadResult{}, api.ErrNoRulesFile
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := os.ReadFile(s.file)
	if err != nil {
		return api.ReloadResult{}, fmt.Errorf("rules file: %w", err)
	}
	cfg, err := alert.Load(data, s.opts())
	if err != nil {
		s.log.Error("alert rules not loaded; the rules in force are unchanged", "file", s.file, "err", err)
		return api.ReloadResult{}, err
	}
	s.disp.SetGroups(cfg.ActionGroups, cfg.SMTP)
	if err := s.mgr.SetRules(cfg.Rules); err != nil {
		return api.ReloadResult{}, err
	}
	s.last = api.ReloadResult{File: s.file, Rules: len(cfg.Rules), ActionGroups: len(cfg.ActionGroups), LoadedAt: time.Now().UTC()}
	s.log.Info("alert rules loaded", "file", s.file, "rules", len(cfg.Rules), "action_groups", len(cfg.ActionGroups))
	return s.last, nil
}

func (s *alertService) Rules(context.Context) []alert.RuleStatus { return s.mgr.Rules() }

func (s *alertService) History(_ context.Context, q alert.HistoryQuery) []alert.Record {
	return s.mgr.History(q)
}

func (s *alertService) Destinations(context.Context) ([]alert.DestinationStats, uint64) {
	return s.disp.Stats()
}
