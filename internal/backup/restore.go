package backup

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/datadir"
	"github.com/tether-hub/tether/internal/journal"
)

// RestoreOptions say where a backup goes.
type RestoreOptions struct {
	// DataDir is the new data dir: it must not exist or be empty.
	DataDir string
	// NATSURL, when set, is the (external) NATS the streams go to; none
	// of them may exist there. Empty: the data dir's embedded server.
	NATSURL string
	// Progress, when set, hears about each piece restored.
	Progress func(format string, a ...any)
}

// Restore rebuilds a data dir from the backup in from. The backup is
// verified whole first; the data dir is built beside its final place and
// renamed there only when complete, so a failed restore leaves nothing
// that looks like a data dir (and, with NATSURL, removes the streams it
// created).
func Restore(ctx context.Context, from string, o RestoreOptions) (Manifest, error) {
	progress := o.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	m, err := Verify(from)
	if err != nil {
		return m, err
	}
	if m.DataDirFormat > datadir.Current {
		return m, fmt.Errorf("%w: the backup holds a format %d data dir (by %s); this binary writes up to %d: restore it with that release or a newer one",
			datadir.ErrTooNew, m.DataDirFormat, m.Build, datadir.Current)
	}
	target := filepath.Clean(o.DataDir)
	if err := CheckTarget(target); err != nil {
		return m, err
	}
	parent := filepath.Dir(target)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return m, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(target)+".restoring-")
	if err != nil {
		return m, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o700); err != nil {
		return m, err
	}
	if err := restoreStreams(ctx, from, tmp, m, o, progress); err != nil {
		return m, err
	}
	streamFiles := map[string]bool{}
	for _, s := range m.Streams {
		streamFiles[s.File] = true
	}
	for _, f := range m.Files {
		if streamFiles[f.Path] {
			continue
		}
		dst := filepath.Join(tmp, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return m, err
		}
		if err := copyFile(filepath.Join(from, filepath.FromSlash(f.Path)), dst, false); err != nil {
			return m, fmt.Errorf("restore: %s: %w", f.Path, err)
		}
		progress("restored %s (%d bytes)", f.Path, f.Size)
	}
	if err := datadir.WriteFormat(tmp, m.DataDirFormat); err != nil {
		return m, err
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return m, err // an empty directory is replaced
	}
	if err := os.Rename(tmp, target); err != nil {
		return m, err
	}
	ok = true
	return m, nil
}

// restoreStreams restores every stream into the embedded server of dir,
// or into o.NATSURL.
func restoreStreams(ctx context.Context, from, dir string, m Manifest, o RestoreOptions, progress func(string, ...any)) (err error) {
	var nc *nats.Conn
	if o.NATSURL == "" {
		srv, err := journal.OpenServer(ctx, dir)
		if err != nil {
			return err
		}
		defer srv.Close()
		nc = srv.NC
	} else {
		nc, err = nats.Connect(o.NATSURL, nats.Name("tether-restore"))
		if err != nil {
			return fmt.Errorf("restore: NATS %s: %w", o.NATSURL, err)
		}
		defer nc.Close()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// Refuse before writing anything if a stream is there already.
	var exist []string
	for _, s := range m.Streams {
		if _, err := js.Stream(ctx, s.Name); err == nil {
			exist = append(exist, s.Name)
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("restore: looking up stream %s: %w", s.Name, err)
		}
	}
	if len(exist) > 0 {
		return fmt.Errorf("restore: %w on %s: %s; a restore never replaces streams (restore into a NATS without them)", journal.ErrStreamExists, o.NATSURL, strings.Join(exist, ", "))
	}
	var made []string
	defer func() {
		if err != nil && o.NATSURL != "" {
			for _, name := range made {
				_ = js.DeleteStream(context.Background(), name)
			}
		}
	}()
	for _, s := range m.Streams {
		cfg := s.Config
		if o.NATSURL == "" {
			// The embedded server is one node; a cluster's backup had
			// more replicas.
			if cfg, err = withReplicas(cfg, 1); err != nil {
				return fmt.Errorf("restore: stream %s: %w", s.Name, err)
			}
		}
		f, err := os.Open(filepath.Join(from, filepath.FromSlash(s.File)))
		if err != nil {
			return err
		}
		err = journal.RestoreStream(ctx, nc, s.SnapshotInfo, cfg, bufio.NewReaderSize(f, 256<<10))
		f.Close()
		if err != nil {
			return err
		}
		made = append(made, s.Name)
		progress("restored stream %s (%d messages)", s.Name, s.Messages)
	}
	return nil
}

// withReplicas sets num_replicas in a raw stream configuration.
func withReplicas(cfg json.RawMessage, n int) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &m); err != nil {
		return nil, err
	}
	m["num_replicas"] = json.RawMessage(fmt.Sprint(n))
	return json.Marshal(m)
}
