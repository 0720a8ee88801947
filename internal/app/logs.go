package app

import (
	"context"
	"fmt"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/diag"
	diagkv "github.com/tether-hub/tether/internal/diag/kvstore"
	"github.com/tether-hub/tether/internal/kql"
)

// queryMaxBytes bounds the cell data of one API query's result (the
// engine's default is 64 MiB). A result is held whole and then encoded as
// JSON, so a running query costs about three times this in Go memory; with
// api.DefaultQueryLimits.Running queries at once this is most of the
// query memory budget (docs/ARCHITECTURE.md). 10,000 rows of every
// AzureDiagnostics column count about 16 MiB (bench/loggen records), so
// the row limit, not this, cuts ordinary queries.
const queryMaxBytes = 24 << 20

// logService is the embedded log workspace (LogStore) and the
// diagnostic settings that route the journal's records to it and to the
// other destinations.
type logService struct {
	store LogStore
	diag  *diag.Manager
	// query runs KQL over the store (POST /api/v1/query).
	query *kql.Engine
}

func (a *App) startLogs(ctx context.Context) error {
	// A SQLite log left by an older release or a SQLite build is converted
	// before the hub serves; the operator sees the job's size, then its
	// progress, and what became of logs.db.
	mig := MigrationMeter{Every: 5 * time.Second, Line: func(done, total int64, perSec float64, left time.Duration) {
		if done == 0 {
			a.log.Info("converting the SQLite log into the DuckDB log before serving; stopping is safe, the next start resumes",
				"from", SQLiteLogFile, "to", LogFile, "records", total)
			return
		}
		a.log.Info("converting the SQLite log", "records", done, "of", total,
			"percent", fmt.Sprintf("%.1f", 100*float64(done)/float64(total)), "records_per_s", int64(perSec), "left", left)
	}}
	store, err := OpenLogStore(ctx, a.cfg.DataDir, LogStoreOptions{Memory: a.cfg.LogMemory, Progress: mig.Progress})
	if err != nil {
		return fmt.Errorf("log store: %w", err)
	}
	if mig.Started() {
		a.log.Info("SQLite log converted; delete the old file once content", "took", mig.Took(), "old", SQLiteLogFile+".migrated")
	}
	a.onStop(func(context.Context) error { return store.Close() })
	var settings *diagkv.Store
	err = a.journal.UntilReady(ctx, func(ctx context.Context) (err error) {
		settings, err = diagkv.New(ctx, a.journal.JS, a.journal.Replicas)
		return err
	})
	if err != nil {
		return err
	}
	m, err := diag.NewManager(diag.Options{
		JS: a.journal.JS, NC: a.journal.NC, Store: settings, Workspace: store,
		WorkspaceDurable: a.workspaceDurable(), Node: a.cfg.Cluster.NodeName, WorkspaceRetention: a.cfg.LogRetention, ArchiveDir: a.cfg.ArchiveDir,
		Resource: connlog.Resource{}, Logger: a.log, Now: a.cfg.Clock, RetentionEvery: a.cfg.RetentionEvery,
	})
	if err != nil {
		return err
	}
	if err := m.Start(ctx); err != nil {
		return fmt.Errorf("log destinations: %w", err)
	}
	a.logs = &logService{store: store, diag: m, query: &kql.Engine{
		DB: store, Table: kql.AzureDiagnostics(), Dialect: logDialect, MaxBytes: queryMaxBytes,
	}}
	// Stop lets every destination catch up with the journal (bounded), so
	// a clean shutdown's last events are logged.
	a.onStop(m.Stop)
	if err := a.metrics.Register(m.Collector()); err != nil {
		return fmt.Errorf("diagnostic settings metrics: %w", err)
	}
	return nil
}

// Find serves api.LogFinder.
func (l *logService) Find(ctx context.Context, f api.LogFilter) ([]map[string]any, error) {
	recs, err := l.store.Find(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, len(recs))
	for i, r := range recs {
		out[i] = r.Map()
	}
	return out, nil
}

// Logs is the Connections log store (for tests and embedding).
func (a *App) Logs() connlog.LogStore {
	if a.logs == nil {
		return nil
	}
	return a.logs.store
}

// queryRunner is the KQL engine for the API (nil without a log store).
func (a *App) queryRunner() api.QueryRunner {
	if a.logs == nil {
		return nil
	}
	return a.logs.query
}

// Diag is the diagnostic settings manager (for tests and embedding).
func (a *App) Diag() *diag.Manager {
	if a.logs == nil {
		return nil
	}
	return a.logs.diag
}
