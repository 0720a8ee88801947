package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/tether-hub/tether/internal/registry"
)

// BackupService streams a backup of the hub (internal/backup's tar form).
// It returns ErrBackupBusy, before writing anything, while another runs.
type BackupService interface {
	WriteBackup(ctx context.Context, w io.Writer) error
}

// ErrBackupBusy may be returned by BackupService (409).
var ErrBackupBusy = errors.New("a backup is already running")

// getBackup serves GET /api/v1/backup: the whole state of the hub, keys
// included, so only a policy with all rights may take it. A failure after
// the first byte can only cut the stream short; the client sees the
// missing manifest (tether backup says so).
func (s *Server) getBackup(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, registry.AllRights, s.v1Error); !ok {
		return
	}
	if s.d.Backup == nil {
		s.unavailable(w, r, "backup")
		return
	}
	cw := &firstWrite{w: w, start: func() {
		w.Header().Set("Content-Type", "application/x-tar")
		w.Header().Set("Content-Disposition", `attachment; filename="tether-backup-`+time.Now().UTC().Format("20060102T150405Z")+`.tar"`)
		w.WriteHeader(http.StatusOK)
	}}
	err := s.d.Backup.WriteBackup(r.Context(), cw)
	switch {
	case err == nil:
		if !cw.started {
			cw.start()
		}
	case cw.started:
		s.log.Error("backup stream cut short", "err", err)
	case errors.Is(err, ErrBackupBusy):
		s.v1Error(w, r, http.StatusConflict, "Conflict", err.Error()+"; try again when it is done")
	default:
		s.fail(w, r, err, s.v1Error)
	}
}

// firstWrite sends the success header with the first byte, so an error
// before it can still be answered properly.
type firstWrite struct {
	w       io.Writer
	start   func()
	started bool
}

func (f *firstWrite) Write(p []byte) (int, error) {
	if !f.started {
		f.started = true
		f.start()
	}
	return f.w.Write(p)
}
