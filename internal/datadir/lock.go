package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrLocked is returned by Acquire while another process holds the lock.
var ErrLocked = errors.New("data dir in use")

// LockedError says who holds a data dir.
type LockedError struct {
	Dir    string
	PID    int
	Holder string
}

func (e *LockedError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = fmt.Sprintf("process %d (%s)", e.PID, e.Holder)
	}
	return fmt.Sprintf("data dir %s is in use by %s", e.Dir, who)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// Lock is a held data dir lock.
type Lock struct {
	f *os.File
}

// Acquire takes dir's lock without waiting, recording this process as
// holder (e.g. "tether serve"). The lock is the kernel's (flock): it goes
// with the process, so a killed hub leaves no stale lock behind.
func Acquire(dir, holder string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir lock: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			le := &LockedError{Dir: dir}
			le.PID, le.Holder = readHolder(path)
			return nil, le
		}
		return nil, fmt.Errorf("data dir lock %s: %w", path, err)
	}
	// Who holds it, for the message another process gives.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(fmt.Sprintf("%d\n%s\n", os.Getpid(), holder)), 0)
	}
	return &Lock{f: f}, nil
}

func readHolder(path string) (int, string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, ""
	}
	pid, holder, _ := strings.Cut(string(b), "\n")
	n, _ := strconv.Atoi(strings.TrimSpace(pid))
	return n, strings.TrimSpace(holder)
}

// Release gives the lock up. Safe on nil and twice.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	_ = f.Truncate(0)
	return f.Close() // closing the descriptor drops the flock
}
