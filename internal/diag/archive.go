package diag

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
)

// HourFile is the name of every archive file (Azure's PT1H.json blobs).
const HourFile = "PT1H.json"

// maxOpenHours bounds the hour files an archive keeps open: records come
// in time order, so only the current hour (and, around the turn of an
// hour, the one before) are written to.
const maxOpenHours = 4

// archiveSink writes records of one setting to hourly JSON-lines files
// under root (see Archive). It is a connlog.Sink, driven by a Writer's
// durable journal consumer:
//
//   - Append writes each file's new lines with one write and fsyncs the
//     file before it returns, so the journal is acked only for records
//     on disk.
//   - A redelivered batch (a crash or failure between write and ack) is
//     not written twice: a record always renders to the same line, and
//     each open file keeps the FNV-64 hashes of its lines (read back from
//     the file when it is opened). Two different records with equal lines
//     would be indistinguishable to a reader too.
//   - A line torn by a crash in the middle of a write is cut off when the
//     file is opened again; its record is in the unacked batch the journal
//     delivers again.
//   - A failed write is undone (the file truncated to its size before),
//     so the retry starts clean.
type archiveSink struct {
	root string

	mu    sync.Mutex
	files map[string]*hourFile // open files by path
	tick  uint64               // use counter for closing the least recent
}

type hourFile struct {
	f    *os.File
	size int64
	seen map[uint64]struct{}
	used uint64
}

func newArchiveSink(root string) *archiveSink {
	return &archiveSink{root: root, files: map[string]*hourFile{}}
}

// hourPath is the file of records of category and resource id in the
// hour of t: <root>/insights-logs-<category>/resourceId=<id>/y=…/m=00/PT1H.json.
func hourPath(root, category, resourceID string, t time.Time) string {
	t = t.UTC()
	parts := []string{root, safeSegment(container(category)), "resourceId="}
	for seg := range strings.SplitSeq(resourceID, "/") {
		if seg != "" {
			parts = append(parts, safeSegment(seg))
		}
	}
	parts = append(parts,
		fmt.Sprintf("y=%04d", t.Year()), fmt.Sprintf("m=%02d", int(t.Month())), fmt.Sprintf("d=%02d", t.Day()),
		fmt.Sprintf("h=%02d", t.Hour()), "m=00", HourFile)
	return filepath.Join(parts...)
}

// safeSegment keeps a path segment inside its directory.
func safeSegment(s string) string {
	if s == "." || s == ".." {
		return "_"
	}
	return strings.NewReplacer("\\", "_", "\x00", "_").Replace(s)
}

func lineHash(line []byte) uint64 {
	h := fnv.New64a()
	h.Write(line)
	return h.Sum64()
}

// Append implements connlog.Sink.
func (a *archiveSink) Append(ctx context.Context, records []connlog.Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	type pending struct {
		hf     *hourFile
		buf    []byte
		hashes []uint64
	}
	var order []string
	byPath := map[string]*pending{}
	var line []byte
	for _, r := range records {
		p := hourPath(a.root, r.Category, r.ResourceID, r.TimeGenerated)
		pd := byPath[p]
		if pd == nil {
			hf, err := a.open(p)
			if err != nil {
				return err
			}
			pd = &pending{hf: hf}
			byPath[p] = pd
			order = append(order, p)
		}
		line = AppendStorageJSON(line[:0], r)
		h := lineHash(line)
		if _, dup := pd.hf.seen[h]; dup || slices.Contains(pd.hashes, h) {
			continue
		}
		pd.buf = append(append(pd.buf, line...), '\n')
		pd.hashes = append(pd.hashes, h)
	}
	for _, p := range order {
		if err := ctx.Err(); err != nil {
			return err
		}
		pd := byPath[p]
		if len(pd.buf) == 0 {
			continue
		}
		if err := pd.hf.write(pd.buf); err != nil {
			a.close(p)
			return fmt.Errorf("diag: archive %s: %w", p, err)
		}
		for _, h := range pd.hashes {
			pd.hf.seen[h] = struct{}{}
		}
	}
	a.evict()
	return nil
}

// write appends buf and syncs; on failure the file is cut back.
func (hf *hourFile) write(buf []byte) error {
	n, err := hf.f.WriteAt(buf, hf.size)
	if err == nil && n < len(buf) {
		err = io.ErrShortWrite
	}
	if err == nil {
		err = hf.f.Sync()
	}
	if err != nil {
		_ = hf.f.Truncate(hf.size)
		return err
	}
	hf.size += int64(n)
	return nil
}

// open returns the open file at p, opening (and repairing) it if needed.
func (a *archiveSink) open(p string) (*hourFile, error) {
	a.tick++
	if hf := a.files[p]; hf != nil {
		hf.used = a.tick
		return hf, nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return nil, fmt.Errorf("diag: archive: %w", err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("diag: archive: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("diag: archive %s: %w", p, err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		// A torn last line: its record was never acked.
		data = data[:strings.LastIndexByte(string(data), '\n')+1]
		if err := f.Truncate(int64(len(data))); err != nil {
			f.Close()
			return nil, fmt.Errorf("diag: archive %s: cutting a torn line: %w", p, err)
		}
	}
	hf := &hourFile{f: f, size: int64(len(data)), seen: map[uint64]struct{}{}, used: a.tick}
	for line := range strings.SplitSeq(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line != "" {
			hf.seen[lineHash([]byte(line))] = struct{}{}
		}
	}
	a.files[p] = hf
	return hf, nil
}

func (a *archiveSink) close(p string) {
	if hf := a.files[p]; hf != nil {
		hf.f.Close()
		delete(a.files, p)
	}
}

// evict closes the least recently used files beyond maxOpenHours.
func (a *archiveSink) evict() {
	for len(a.files) > maxOpenHours {
		var oldest string
		var used uint64
		for p, hf := range a.files {
			if oldest == "" || hf.used < used {
				oldest, used = p, hf.used
			}
		}
		a.close(oldest)
	}
}

// Close closes the open files.
func (a *archiveSink) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for p := range a.files {
		a.close(p)
	}
}

// DeleteBefore implements connlog.Sink: it removes the hour files whose
// hour ended at or before t (and directories left empty) and says how many
// files it removed.
func (a *archiveSink) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var n int64
	var dirs []string
	err := filepath.WalkDir(a.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		hour, ok := hourOf(p)
		if d.Name() != HourFile || !ok || hour.Add(time.Hour).After(t) {
			return nil
		}
		a.close(p)
		if err := os.Remove(p); err != nil {
			return err
		}
		n++
		return nil
	})
	// Deepest first; removing a directory that is not empty fails, which
	// is what keeps it.
	for i := len(dirs) - 1; i > 0; i-- {
		_ = os.Remove(dirs[i])
	}
	return n, err
}

// hourOf reads the hour of an archive file from its y=/m=/d=/h= directories.
func hourOf(p string) (time.Time, bool) {
	var y, mo, d, h = -1, -1, -1, -1
	segs := strings.Split(filepath.ToSlash(filepath.Dir(p)), "/")
	for i := len(segs) - 1; i >= 0 && i >= len(segs)-5; i-- {
		k, v, ok := strings.Cut(segs[i], "=")
		if !ok {
			return time.Time{}, false
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return time.Time{}, false
		}
		switch {
		case k == "h":
			h = n
		case k == "d":
			d = n
		case k == "y":
			y = n
		case k == "m" && i == len(segs)-1: // the minute, always 00
		case k == "m":
			mo = n
		}
	}
	if y < 0 || mo < 1 || d < 1 || h < 0 {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(mo), d, h, 0, 0, 0, time.UTC), true
}
