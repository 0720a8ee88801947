package backup

import (
	"archive/tar"
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
	"strings"
	"syscall"
	"time"
)

// ErrIncomplete: a backup stream ended before its manifest (the hub
// stopped sending: see its log).
var ErrIncomplete = errors.New("the backup is incomplete")

// validName refuses paths that could leave the backup or data dir.
func validName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, `\`) || path.Clean(name) != name ||
		name == "." || strings.HasPrefix(name, "../") || name == ".." {
		return fmt.Errorf("backup: %q is not a plain relative path", name)
	}
	return nil
}

// emptyDir creates dir (owner only) or accepts an existing empty one, so
// nothing is ever overwritten. created says whether it made dir.
func emptyDir(dir string) (created bool, err error) {
	if err := CheckTarget(dir); err != nil {
		return false, err
	}
	if _, err := os.Stat(dir); err == nil {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	return true, nil
}

// CheckTarget says why dir cannot receive a backup or a restore (it
// exists and is not empty), before anything is asked of a hub.
func CheckTarget(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case len(ents) > 0:
		return fmt.Errorf("%s is not empty: give a new or empty directory (nothing is overwritten)", dir)
	}
	return nil
}

// DirWriter writes a backup into a directory.
type DirWriter struct{ dir string }

// NewDirWriter prepares dir, which must be new or empty.
func NewDirWriter(dir string) (*DirWriter, error) {
	if _, err := emptyDir(dir); err != nil {
		return nil, err
	}
	return &DirWriter{dir: dir}, nil
}

// Add implements Writer: the staged file is moved (or copied across
// file systems) into place and synced.
func (d *DirWriter) Add(name, p string) error {
	if err := validName(name); err != nil {
		return err
	}
	dst := filepath.Join(d.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	if err := os.Rename(p, dst); err != nil {
		if !errors.Is(err, syscall.EXDEV) {
			return err
		}
		if err := copyFile(p, dst, false); err != nil {
			return err
		}
	}
	f, err := os.Open(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// TarWriter writes a backup as a tar stream (the API's answer).
type TarWriter struct{ tw *tar.Writer }

// NewTarWriter writes to w; Close ends the stream.
func NewTarWriter(w io.Writer) *TarWriter { return &TarWriter{tw: tar.NewWriter(w)} }

// Add implements Writer.
func (t *TarWriter) Add(name, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: fi.Size(), Mode: 0o600, ModTime: fi.ModTime()}); err != nil {
		return err
	}
	_, err = io.Copy(t.tw, f)
	return err
}

// Close writes the end of the archive.
func (t *TarWriter) Close() error { return t.tw.Close() }

// maxManifest bounds the manifest read from a stream.
const maxManifest = 64 << 20

// Extract writes a backup tar stream into dir (new or empty) and checks
// it against its manifest, which comes last. On any error what it wrote
// is removed again.
func Extract(r io.Reader, dir string) (m Manifest, err error) {
	created, err := emptyDir(dir)
	if err != nil {
		return m, err
	}
	defer func() {
		if err != nil {
			if created {
				os.RemoveAll(dir)
			} else {
				clearDir(dir)
			}
		}
	}()
	got := map[string]File{}
	var manifest *Manifest
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if manifest == nil {
				return m, fmt.Errorf("%w: %v (see the hub's log)", ErrIncomplete, err)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				break // only the archive's end marker is missing: check decides
			}
			return m, fmt.Errorf("backup: reading the stream: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return m, fmt.Errorf("backup: unexpected entry %q (type %c)", hdr.Name, hdr.Typeflag)
		}
		if err := validName(hdr.Name); err != nil {
			return m, err
		}
		if _, dup := got[hdr.Name]; dup {
			return m, fmt.Errorf("backup: %s appears twice", hdr.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		if hdr.Name == ManifestFile {
			b, err := io.ReadAll(io.LimitReader(tr, maxManifest))
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return m, fmt.Errorf("%w: the stream ended inside the manifest (the hub stopped sending: see its log)", ErrIncomplete)
			}
			if err != nil {
				return m, err
			}
			var mm Manifest
			if err := json.Unmarshal(b, &mm); err != nil {
				return m, fmt.Errorf("backup: manifest: %w", err)
			}
			manifest = &mm
			if err := os.WriteFile(dst, b, 0o600); err != nil {
				return m, err
			}
			got[hdr.Name] = File{}
			continue
		}
		f, err := writeHashed(dst, tr)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return m, fmt.Errorf("%w: the stream ended inside %s (the hub stopped sending: see its log)", ErrIncomplete, hdr.Name)
		}
		if err != nil {
			return m, err
		}
		f.Path = hdr.Name
		got[hdr.Name] = f
	}
	if manifest == nil {
		return m, fmt.Errorf("%w: the stream ended without its manifest (the hub stopped sending: see its log)", ErrIncomplete)
	}
	if err := check(*manifest, func(f File) (File, error) {
		g, ok := got[f.Path]
		if !ok {
			return File{}, fs.ErrNotExist
		}
		return g, nil
	}); err != nil {
		return m, err
	}
	return *manifest, nil
}

func clearDir(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

func writeHashed(dst string, r io.Reader) (File, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return File{}, err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return File{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), r)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return File{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, err
}

// check compares every file of m with what have reports for it.
func check(m Manifest, have func(File) (File, error)) error {
	if m.Version != Version {
		return fmt.Errorf("backup: format %d, this build reads %d", m.Version, Version)
	}
	var problems []string
	streamFile := map[string]bool{}
	for _, f := range m.Files {
		if err := validName(f.Path); err != nil {
			return err
		}
		g, err := have(f)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			problems = append(problems, f.Path+" is missing")
		case err != nil:
			problems = append(problems, f.Path+": "+err.Error())
		case g.Size != f.Size || g.SHA256 != f.SHA256:
			problems = append(problems, fmt.Sprintf("%s differs from the manifest (%d bytes, want %d; checksum %s)", f.Path, g.Size, f.Size, shortSum(g.SHA256, f.SHA256)))
		}
		streamFile[f.Path] = true
	}
	for _, s := range m.Streams {
		if !streamFile[s.File] {
			problems = append(problems, "stream "+s.Name+": its file "+s.File+" is not listed")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("backup: damaged (%d problems):\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	return nil
}

func shortSum(got, want string) string {
	if got == want {
		return "matches"
	}
	return "differs"
}

// Verify checks the backup in dir against its manifest: every file there,
// of the recorded size and checksum.
func Verify(dir string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return m, fmt.Errorf("%s has no %s: not a Tether backup, or one that did not finish", dir, ManifestFile)
	}
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("backup: %s: %w", ManifestFile, err)
	}
	err = check(m, func(f File) (File, error) { return describe(f.Path, filepath.Join(dir, filepath.FromSlash(f.Path))) })
	return m, err
}

// Summary is one line about a backup.
func (m Manifest) Summary() string {
	var msgs uint64
	for _, s := range m.Streams {
		msgs += s.Messages
	}
	return fmt.Sprintf("hub %s, started %s, took %s: %d streams (%d messages), %d files, %.1f MB",
		m.Hub, m.Started.Format(time.RFC3339), m.Finished.Sub(m.Started).Round(time.Millisecond), len(m.Streams), msgs, len(m.Files), float64(m.Size())/1e6)
}
