package app

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/datadir"
)

// maxSocketPath is the longest Unix socket path every platform accepts
// (sun_path is 104 bytes on the BSDs, 108 on Linux, with its NUL).
const maxSocketPath = 103

// startAdminSocket serves the API on <data-dir>/tether.sock without SAS
// tokens, for `tether … --local` on this machine: the way back in when
// every key is lost. Who may connect is decided by the operating system:
// the socket is the hub user's only (0600 in a 0700 directory) and, where
// the kernel tells, a peer of another user (root aside) is turned away.
// A data dir path too long for a socket only costs the socket (logged).
func (a *App) startAdminSocket() error {
	path := filepath.Join(a.cfg.DataDir, datadir.SocketFile)
	if abs, err := filepath.Abs(path); err == nil && len(abs) <= maxSocketPath {
		path = abs
	}
	if len(path) > maxSocketPath {
		a.log.Warn("no local admin socket: the data dir path is too long for a Unix socket; tether … --local works only while the hub is stopped", "path", path)
		return nil
	}
	// We hold the data dir lock, so a socket file here is a dead hub's.
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		a.log.Warn("no local admin socket", "path", path, "err", err)
		return nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return err
	}
	handler := a.apiHandler
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			handler.ServeHTTP(w, r.WithContext(api.WithLocalAdmin(r.Context())))
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := srv.Serve(&sameUserListener{Listener: ln, log: a.log}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("local admin socket stopped", "err", err)
		}
	}()
	a.onStop(func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		_ = os.Remove(path)
		return err
	})
	return nil
}

// sameUserListener accepts connections of the hub's own user (or root)
// only, where the platform can tell (peerUID).
type sameUserListener struct {
	net.Listener
	log *slog.Logger
}

func (l *sameUserListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, known := peerUID(c)
		if !known || uid == 0 || uid == os.Geteuid() {
			return c, nil
		}
		l.log.Warn("local admin socket: connection of another user refused", "uid", uid)
		c.Close()
	}
}
