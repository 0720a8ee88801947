package datadir

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Step migrates a data dir from format From to From+1. Apply must be safe
// to run again on a directory it already changed (an upgrade interrupted
// before FORMAT was written runs the step again).
type Step struct {
	From  int
	What  string // one line for the hub log
	Apply func(dir string) error
}

// steps are the migrations, in order; steps[i].From == i, and
// len(steps) == Current (a test holds it).
var steps = []Step{
	{From: 0, What: "the data dir and its files made readable by the hub's user only (they hold the policy keys)", Apply: privateTree},
}

// Result says what Prepare found and did.
type Result struct {
	// From is the format found (Current for a fresh directory).
	From int
	// Fresh: the directory was missing or held no data.
	Fresh bool
	// Applied lists the migrations run, oldest first.
	Applied []string
}

// Prepare makes dir a data dir of the Current format: creates it (owner
// only), writes FORMAT into a fresh one, migrates an older one step by
// step, and refuses a newer or unreadable one. Hold the lock (Acquire)
// around it.
func Prepare(dir string) (Result, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Result{}, fmt.Errorf("data dir: %w", err)
	}
	info, fresh, err := ReadFormat(dir)
	if err != nil {
		return Result{}, err
	}
	latest := len(steps) // Current, but for tests that replace the steps
	if fresh {
		info.Format = latest
	}
	res := Result{From: info.Format, Fresh: fresh}
	if fresh {
		// An empty directory made for the hub (often 0755) is ours to
		// close: it is about to hold keys.
		_ = os.Chmod(dir, 0o700)
		return res, WriteFormat(dir, latest)
	}
	if info.Format > latest {
		by := info.WrittenBy
		if by == "" {
			by = "a newer release"
		}
		return res, fmt.Errorf("%w: %s has format %d (written by %s), this binary (%s) reads formats up to %d; run that release or a newer one, or restore into a new data dir a backup this release made (tether restore)",
			ErrTooNew, dir, info.Format, by, Build(), latest)
	}
	for f := info.Format; f < latest; f++ {
		st := steps[f]
		if err := st.Apply(dir); err != nil {
			return res, fmt.Errorf("migrating data dir %s from format %d to %d (%s): %w; the directory is still format %d: fix the cause and start again, it resumes there",
				dir, f, f+1, st.What, err, f)
		}
		if err := WriteFormat(dir, f+1); err != nil {
			return res, fmt.Errorf("data dir %s migrated to format %d but FORMAT could not be written: %w", dir, f+1, err)
		}
		res.Applied = append(res.Applied, fmt.Sprintf("%d→%d: %s", f, f+1, st.What))
	}
	return res, nil
}

// privateTree (0→1) takes group and other permissions off the data dir
// and everything in it. Before format 1 the hub created the directory
// 0700 but kept what an operator had made (often 0755), and the journal
// store made files 0640.
func privateTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 || !(d.IsDir() || d.Type().IsRegular()) {
			return nil // links lead elsewhere; sockets and pipes are not data
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if m := fi.Mode().Perm(); m&0o077 != 0 {
			return os.Chmod(p, m&^0o077)
		}
		return nil
	})
}
