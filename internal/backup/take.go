package backup

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/datadir"
	"github.com/tether-hub/tether/internal/journal"
)

// ManifestFile names the manifest inside a backup; Version is the backup
// layout this build writes and reads.
const (
	ManifestFile = "backup.json"
	Version      = 1
)

// Manifest describes a backup.
type Manifest struct {
	Version int `json:"tetherBackup"`
	// Started is when the backup began: everything acknowledged before
	// it is in the backup.
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Build    string    `json:"build"`
	Hub      string    `json:"hub"`
	// DataDirFormat is the data dir format of the hub that took it; a
	// restore writes it, and the next start migrates from there.
	DataDirFormat int      `json:"dataDirFormat"`
	Streams       []Stream `json:"streams"`
	Files         []File   `json:"files"`
}

// Stream is one stream snapshot in a backup.
type Stream struct {
	journal.SnapshotInfo
	File string `json:"file"` // its File's path
}

// File is one file in a backup (stream snapshots included).
type File struct {
	Path   string `json:"path"` // slash-separated, relative to the backup (and to the data dir, for a restore)
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Size is the total of the files.
func (m Manifest) Size() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// Part is one piece of the data dir: Copy writes a consistent copy of it
// to dst (a path that does not exist yet), or returns ErrSkip when there
// is nothing to copy (an optional file that is absent).
type Part struct {
	Name string // path in the backup and in the data dir, slash-separated
	Copy func(ctx context.Context, dst string) error
}

// ErrSkip: a Part has nothing to copy.
var ErrSkip = errors.New("nothing to back up")

// Snapshotter is a database that can copy itself consistently while in
// use (the SQLite stores' BackupTo).
type Snapshotter interface {
	BackupTo(ctx context.Context, path string) error
}

// DatabasePart copies a database with its own BackupTo.
func DatabasePart(name string, db Snapshotter) Part {
	return Part{Name: name, Copy: db.BackupTo}
}

// FilePart copies a file; with lines, only up to its last newline (the
// files Tether appends to are JSON lines, and a line half-written is
// redone by its writer). A missing file is skipped.
func FilePart(name, src string, lines bool) Part {
	return Part{Name: name, Copy: func(_ context.Context, dst string) error { return copyFile(src, dst, lines) }}
}

// DirParts are the regular files below dir (none when it does not exist),
// named under name, copied as JSON lines.
func DirParts(name, dir string) ([]Part, error) {
	var parts []Part
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == dir {
				return filepath.SkipAll
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		parts = append(parts, FilePart(path.Join(name, filepath.ToSlash(rel)), p, true))
		return nil
	})
	return parts, err
}

func copyFile(src, dst string, lines bool) error {
	in, err := os.Open(src)
	if errors.Is(err, fs.ErrNotExist) {
		return ErrSkip
	}
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if !lines {
		_, err = io.Copy(out, in)
	} else {
		err = copyLines(out, in)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyLines copies r up to its last newline.
func copyLines(w io.Writer, r io.Reader) error {
	buf := make([]byte, 64<<10)
	var pending []byte // after the last newline written
	for {
		n, err := r.Read(buf)
		chunk := buf[:n]
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			if _, werr := w.Write(pending); werr != nil {
				return werr
			}
			pending = pending[:0]
			if _, werr := w.Write(chunk[:i+1]); werr != nil {
				return werr
			}
			chunk = chunk[i+1:]
		}
		pending = append(pending, chunk...)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Source is what Take copies.
type Source struct {
	NC *nats.Conn
	JS jetstream.JetStream
	// BeforeJournal are taken before the streams: stores whose journal
	// positions must not get ahead of the streams (the metrics history).
	BeforeJournal []Part
	// AfterJournal are taken after the streams: stores the journal's
	// consumers fill idempotently (log store, archives), and plain files.
	AfterJournal []Part
	Hub          string
	// StageDir holds each piece while it is added (the hub's data dir:
	// the same disk, and the largest piece must fit).
	StageDir string
	Now      func() time.Time
}

// Writer receives the backup's files one at a time.
type Writer interface {
	// Add takes the file at path as name in the backup; path is removed
	// afterwards (the writer may move it).
	Add(name, path string) error
}

// Take copies src into w (see the package doc for the order) and returns
// the manifest it wrote last.
func Take(ctx context.Context, src Source, w Writer) (Manifest, error) {
	now := src.Now
	if now == nil {
		now = time.Now
	}
	m := Manifest{Version: Version, Started: now().UTC(), Build: datadir.Build(), Hub: src.Hub, DataDirFormat: datadir.Current,
		Streams: []Stream{}, Files: []File{}}
	stage, err := os.MkdirTemp(src.StageDir, ".backup-")
	if err != nil {
		return m, fmt.Errorf("backup: staging directory: %w", err)
	}
	defer os.RemoveAll(stage)
	n := 0
	add := func(name, p string) error {
		f, err := describe(name, p)
		if err != nil {
			return err
		}
		if err := w.Add(name, p); err != nil {
			return fmt.Errorf("backup: writing %s: %w", name, err)
		}
		_ = os.Remove(p)
		m.Files = append(m.Files, f)
		return nil
	}
	parts := func(ps []Part) error {
		for _, p := range ps {
			n++
			tmp := filepath.Join(stage, fmt.Sprintf("%03d", n))
			err := p.Copy(ctx, tmp)
			if errors.Is(err, ErrSkip) {
				continue
			}
			if err != nil {
				return fmt.Errorf("backup: %s: %w", p.Name, err)
			}
			if err := add(p.Name, tmp); err != nil {
				return err
			}
		}
		return nil
	}
	if err := parts(src.BeforeJournal); err != nil {
		return m, err
	}
	names, err := journal.TetherStreams(ctx, src.JS)
	if err != nil {
		return m, err
	}
	for _, name := range names {
		n++
		tmp := filepath.Join(stage, fmt.Sprintf("%03d", n))
		info, err := snapshotToFile(ctx, src.NC, name, tmp)
		if err != nil {
			return m, err
		}
		file := "jetstream/" + name + ".snap"
		if err := add(file, tmp); err != nil {
			return m, err
		}
		m.Streams = append(m.Streams, Stream{SnapshotInfo: info, File: file})
	}
	if err := parts(src.AfterJournal); err != nil {
		return m, err
	}
	m.Finished = now().UTC()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	mp := filepath.Join(stage, ManifestFile)
	if err := os.WriteFile(mp, append(b, '\n'), 0o600); err != nil {
		return m, err
	}
	if err := w.Add(ManifestFile, mp); err != nil {
		return m, fmt.Errorf("backup: writing the manifest: %w", err)
	}
	return m, nil
}

func snapshotToFile(ctx context.Context, nc *nats.Conn, name, p string) (journal.SnapshotInfo, error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return journal.SnapshotInfo{}, err
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	info, err := journal.SnapshotStream(ctx, nc, name, bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return info, fmt.Errorf("backup: stream %s: %w", name, err)
	}
	return info, nil
}

// describe is a file's manifest entry.
func describe(name, p string) (File, error) {
	f, err := os.Open(p)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, err
	}
	return File{Path: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}
