package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/backup"
	"github.com/tether-hub/tether/internal/certs"
)

// ErrBackupRunning: one backup at a time.
var ErrBackupRunning = errors.New("a backup is already running")

// backupMu allows one backup at a time (the API, the admin socket, tests).
var backupMu sync.Mutex

// BackupParts are the pieces of a data dir besides the journal, in the
// order the backup package needs: the metrics history before the streams,
// the log store and files after (see internal/backup). The offline
// `tether backup --local` builds the same list from a stopped hub's stores.
func BackupParts(dataDir, archiveDir string, logs, metricsHistory backup.Snapshotter) (before, after []backup.Part, err error) {
	if metricsHistory != nil {
		before = append(before, backup.DatabasePart(MetricsFile, metricsHistory))
	}
	if logs != nil {
		after = append(after, backup.DatabasePart(LogFile, logs))
	}
	after = append(after, backup.FilePart(AlertHistoryFile, filepath.Join(dataDir, filepath.FromSlash(AlertHistoryFile)), true))
	archive, err := backup.DirParts("archive", archiveDir)
	if err != nil {
		return nil, nil, fmt.Errorf("backup: archive dir %s: %w", archiveDir, err)
	}
	after = append(after, archive...)
	// A --dev hub's CA: devices trust it, so a restored hub keeps it.
	for _, name := range []string{certs.CAFile, certs.CAKeyFile, certs.ServerFile, certs.ServerKeyFile} {
		after = append(after, backup.FilePart(name, filepath.Join(dataDir, name), false))
	}
	return before, after, nil
}

func (a *App) backupSource() (backup.Source, error) {
	before, after, err := BackupParts(a.cfg.DataDir, a.cfg.ArchiveDir, a.logs.store, a.metrics.Store())
	if err != nil {
		return backup.Source{}, err
	}
	return backup.Source{
		NC: a.journal.NC, JS: a.journal.JS, Hub: a.cfg.HubName, StageDir: a.cfg.DataDir,
		BeforeJournal: before, AfterJournal: after,
	}, nil
}

// Backup takes a backup of the running hub into w (see internal/backup
// for what it holds and why it is consistent).
func (a *App) Backup(ctx context.Context, w backup.Writer) (backup.Manifest, error) {
	if !backupMu.TryLock() {
		return backup.Manifest{}, ErrBackupRunning
	}
	defer backupMu.Unlock()
	src, err := a.backupSource()
	if err != nil {
		return backup.Manifest{}, err
	}
	m, err := backup.Take(ctx, src, w)
	if err != nil {
		a.log.Error("backup failed", "err", err)
		return m, err
	}
	a.log.Info("backup taken", "summary", m.Summary())
	return m, nil
}

// WriteBackup streams a backup as tar (GET /api/v1/backup).
func (a *App) WriteBackup(ctx context.Context, w io.Writer) error {
	tw := backup.NewTarWriter(w)
	if _, err := a.Backup(ctx, tw); err != nil {
		return err
	}
	return tw.Close()
}

// backupService is api.BackupService: the API's busy error for ours.
type backupService struct{ a *App }

func (b backupService) WriteBackup(ctx context.Context, w io.Writer) error {
	err := b.a.WriteBackup(ctx, w)
	if errors.Is(err, ErrBackupRunning) {
		return api.ErrBackupBusy
	}
	return err
}
