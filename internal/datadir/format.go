package datadir

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// Current is the data dir format this build writes.
const Current = 1

// File names inside a data dir.
const (
	FormatFile    = "FORMAT"
	LockFile      = "tether.lock"
	SocketFile    = "tether.sock"
	BootstrapFile = "owner-connection-string"
	APIURLFile    = "api-url"
)

// ErrTooNew is returned for a data dir written by a newer release.
var ErrTooNew = errors.New("data dir format is newer than this binary")

// Info is the content of FORMAT.
type Info struct {
	Format int `json:"format"`
	// WrittenBy is the build that last wrote the format (for messages).
	WrittenBy string `json:"writtenBy,omitempty"`
}

// ReadFormat returns the data dir's format: FORMAT's, 0 for a directory
// holding data from before FORMAT existed, and fresh = true for a missing
// or empty directory (which gets Current).
func ReadFormat(dir string) (info Info, fresh bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, FormatFile))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &info); err != nil || info.Format < 0 {
			return Info{}, false, fmt.Errorf("%s is not a Tether format file (%q); restore the data dir from a backup or ask for help before changing it",
				filepath.Join(dir, FormatFile), strings.TrimSpace(string(b)))
		}
		return info, false, nil
	case !errors.Is(err, os.ErrNotExist):
		return Info{}, false, fmt.Errorf("reading the data dir format: %w", err)
	}
	if holdsData(dir) {
		return Info{Format: 0}, false, nil
	}
	return Info{Format: Current}, true, nil
}

// holdsData reports whether dir has what an unversioned (format 0) hub
// left behind.
func holdsData(dir string) bool {
	for _, name := range []string{"jetstream", "logs.db", "metrics.db", "alerts", BootstrapFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// WriteFormat records format in dir's FORMAT, atomically.
func WriteFormat(dir string, format int) error {
	b, err := json.Marshal(Info{Format: format, WrittenBy: Build()})
	if err != nil {
		return err
	}
	return WritePrivate(filepath.Join(dir, FormatFile), append(b, '\n'))
}

// Build names this binary: the module version and VCS revision when the
// build recorded them.
func Build() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "tether"
	}
	v := "tether " + bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}

// WritePrivate writes a file readable by the owner only, atomically (a
// temporary file renamed over it), so a reader never sees half of it.
func WritePrivate(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename: nothing to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
