package app

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/sqlite"
	"github.com/tether-hub/tether/internal/kql"
	kqlsqlite "github.com/tether-hub/tether/internal/kql/sqlite"
)

// LogFile is the Connections log database inside the data dir.
const LogFile = "logs.db"

// logService is the embedded log workspace: the SQLite store and the
// journal consumer that fills it.
type logService struct {
	store  *sqlite.Store
	writer *connlog.Writer
	// query runs KQL over the store (POST /api/v1/query).
	query *kql.Engine
}

func (a *App) startLogs(ctx context.Context) error {
	store, err := sqlite.Open(ctx, filepath.Join(a.cfg.DataDir, LogFile))
	if err != nil {
		return fmt.Errorf("log store: %w", err)
	}
	a.onStop(func(context.Context) error { return store.Close() })
	w, err := connlog.NewWriter(connlog.WriterOptions{
		JS: a.journal.JS, Store: store, Logger: a.log,
		Resource: connlog.Resource{}, Retention: a.cfg.LogRetention,
	})
	if err != nil {
		return err
	}
	if err := w.Start(ctx); err != nil {
		return fmt.Errorf("log writer: %w", err)
	}
	a.logs = &logService{store: store, writer: w, query: &kql.Engine{
		DB: store, Table: kql.AzureDiagnostics(), Dialect: kqlsqlite.Dialect{},
	}}
	a.onStop(a.logs.stop)
	return nil
}

// stop lets the writer catch up with the journal (bounded), so a clean
// shutdown's last events are in the log, then stops it.
func (l *logService) stop(ctx context.Context) error {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		lag, err := l.writer.Lag(ctx)
		if err != nil || lag == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return l.writer.Stop(ctx)
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
