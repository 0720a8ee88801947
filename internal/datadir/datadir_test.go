package datadir_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-hub/tether/internal/datadir"
)

func TestPrepareFresh(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	res, err := datadir.Prepare(dir)
	if err != nil || !res.Fresh || len(res.Applied) != 0 {
		t.Fatalf("fresh: %+v %v", res, err)
	}
	info, fresh, err := datadir.ReadFormat(dir)
	if err != nil || fresh || info.Format != datadir.Current || info.WrittenBy == "" {
		t.Fatalf("after prepare: %+v fresh=%v %v", info, fresh, err)
	}
	fi, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("new data dir mode %v", fi.Mode().Perm())
	}
	// Again: nothing to do.
	res, err = datadir.Prepare(dir)
	if err != nil || res.Fresh || res.From != datadir.Current || len(res.Applied) != 0 {
		t.Fatalf("second prepare: %+v %v", res, err)
	}
}

// A format 0 directory (data, no FORMAT) made by an operator with open
// permissions is migrated: private, FORMAT written.
func TestPrepareMigratesFormat0(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "old")
	for _, d := range []string{dir, filepath.Join(dir, "jetstream", "jetstream", "$G")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chmod(d, 0o755)
	}
	files := map[string]os.FileMode{"logs.db": 0o644, "jetstream/jetstream/$G/1.blk": 0o640, "owner-connection-string": 0o600}
	for name, mode := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	res, err := datadir.Prepare(dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.From != 0 || res.Fresh || len(res.Applied) != 1 || !strings.HasPrefix(res.Applied[0], "0→1") {
		t.Fatalf("result %+v", res)
	}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.Type()&os.ModeSymlink != 0 {
			return err
		}
		fi, _ := d.Info()
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is still %v", p, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "logs.db")); string(b) != "x" {
		t.Error("migration changed a file's content")
	}
	if info, _, _ := datadir.ReadFormat(dir); info.Format != datadir.Current {
		t.Errorf("format after migration: %d", info.Format)
	}
}

func TestPrepareRefusesNewerAndUnreadable(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, datadir.FormatFile), []byte(`{"format":99,"writtenBy":"tether v9.0.0"}`), 0o600)
	_, err := datadir.Prepare(dir)
	if !errors.Is(err, datadir.ErrTooNew) || !strings.Contains(err.Error(), "format 99 (written by tether v9.0.0)") || !strings.Contains(err.Error(), "reads formats up to 1") {
		t.Fatalf("newer: %v", err)
	}
	os.WriteFile(filepath.Join(dir, datadir.FormatFile), []byte("garbage"), 0o600)
	if _, err := datadir.Prepare(dir); err == nil || !strings.Contains(err.Error(), "not a Tether format file") {
		t.Fatalf("garbage: %v", err)
	}
}

// A failing step leaves FORMAT at the step's start; the next Prepare
// resumes there, and steps already done are not run again.
func TestPrepareResumesAfterAFailedStep(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "jetstream"), 0o700)
	var ran []string
	fail := true
	defer datadir.SetSteps([]datadir.Step{
		{From: 0, What: "first", Apply: func(string) error { ran = append(ran, "first"); return nil }},
		{From: 1, What: "second", Apply: func(string) error {
			ran = append(ran, "second")
			if fail {
				return errors.New("disk full")
			}
			return nil
		}},
	})()
	_, err := datadir.Prepare(dir)
	if err == nil || !strings.Contains(err.Error(), "from format 1 to 2 (second): disk full") || !strings.Contains(err.Error(), "still format 1") {
		t.Fatalf("failed step: %v", err)
	}
	if info, _, _ := datadir.ReadFormat(dir); info.Format != 1 {
		t.Fatalf("format after a failed second step: %d", info.Format)
	}
	fail = false
	res, err := datadir.Prepare(dir)
	if err != nil || res.From != 1 || len(res.Applied) != 1 {
		t.Fatalf("resume: %+v %v", res, err)
	}
	if strings.Join(ran, ",") != "first,second,second" {
		t.Fatalf("ran %v", ran)
	}
	if info, _, _ := datadir.ReadFormat(dir); info.Format != 2 {
		t.Fatalf("format after resume: %d", info.Format)
	}
}

func TestCurrentIsTheLastStep(t *testing.T) {
	if got := datadir.StepCount(); got != datadir.Current {
		t.Fatalf("%d migration steps, Current = %d", got, datadir.Current)
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	l, err := datadir.Acquire(dir, "tether serve")
	if err != nil {
		t.Fatal(err)
	}
	_, err = datadir.Acquire(dir, "tether policy")
	var le *datadir.LockedError
	if !errors.As(err, &le) || !errors.Is(err, datadir.ErrLocked) || le.PID != os.Getpid() || le.Holder != "tether serve" {
		t.Fatalf("second acquire: %v", err)
	}
	if !strings.Contains(err.Error(), "in use by process") {
		t.Errorf("message: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := datadir.Acquire(dir, "tether policy")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}

func TestWritePrivate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "secret")
	if err := datadir.WritePrivate(p, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := datadir.WritePrivate(p, []byte("two")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(b) != "two" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%q %v", b, fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}
