package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tether-hub/tether/internal/datadir"
)

// openDataDir locks the data dir for this process and brings it to the
// current format (datadir.Prepare). The lock is released last in Stop.
func (a *App) openDataDir() error {
	dir := a.cfg.DataDir
	lock, err := datadir.Acquire(dir, "tether serve")
	if err != nil {
		if errors.Is(err, datadir.ErrLocked) {
			return fmt.Errorf("%w: stop it first, or give this hub its own --data-dir", err)
		}
		return err
	}
	a.onStop(func(context.Context) error { return lock.Release() })
	res, err := datadir.Prepare(dir)
	if err != nil {
		return err
	}
	a.dirFormat = res
	for _, step := range res.Applied {
		a.log.Info("data dir migrated", "dir", dir, "step", step)
	}
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		a.log.Warn("the data dir is open to other users; it holds the policy keys: chmod 700 it", "dir", dir, "mode", fi.Mode().Perm().String())
	}
	return nil
}

// writeBootstrap leaves what an operator (and `tether` run on this
// machine as the hub's user) needs in the data dir of a hub started
// without --dev: the API URL on every start, and the owner connection
// string once, when nobody can know the keys yet — the hub's first start,
// or its first start after an upgrade from a release that never showed
// them (format 0). The hub logs where, never the key. The file is kept
// current while it exists (syncBootstrap); deleting it is the operator's
// call once the string is in a secret store.
func (a *App) writeBootstrap() (err error) {
	dir := a.cfg.DataDir
	// api-url last: once it is there, so is everything else.
	defer func() {
		if err == nil {
			if werr := datadir.WritePrivate(filepath.Join(dir, datadir.APIURLFile), []byte("https://"+a.apiHostPort()+"\n")); werr != nil {
				err = fmt.Errorf("api-url file: %w", werr)
			}
		}
	}()
	path := filepath.Join(dir, datadir.BootstrapFile)
	_, statErr := os.Stat(path)
	missing := errors.Is(statErr, os.ErrNotExist)
	first := a.registry.CreatedDefaultPolicies()
	upgraded := a.dirFormat.From == 0 && !a.dirFormat.Fresh && missing
	if !first && !upgraded {
		a.syncBootstrap()
		return nil
	}
	if _, ok := a.registry.Policy(ownerPolicy); !ok {
		return nil // deleted by the operator: nothing to hand out
	}
	if werr := datadir.WritePrivate(path, []byte(a.OwnerConnectionString()+"\n")); werr != nil {
		return fmt.Errorf("bootstrap file: %w", werr)
	}
	why := "first start"
	if !first {
		why = "first start after the upgrade; earlier releases did not show the keys"
	}
	a.log.Info("owner connection string written to the data dir, readable by this user only: copy it to a secret store, then delete the file (tether policy show iothubowner prints it again)",
		"file", path, "why", why)
	return nil
}

// ownerPolicy is the policy whose connection string the bootstrap file
// holds.
const ownerPolicy = "iothubowner"

// syncBootstrap keeps an existing owner connection string file in step
// with the owner's keys (after renew-key here, on another hub node, or
// offline), and removes it when the policy is gone.
func (a *App) syncBootstrap() {
	path := filepath.Join(a.cfg.DataDir, datadir.BootstrapFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return // absent: the operator removed it, as advised
	}
	if _, ok := a.registry.Policy(ownerPolicy); !ok {
		if err := os.Remove(path); err == nil {
			a.log.Warn("policy iothubowner was deleted: its connection string file is removed", "file", path)
		}
		return
	}
	want := a.OwnerConnectionString()
	if strings.TrimSpace(string(b)) == want {
		return
	}
	if err := datadir.WritePrivate(path, []byte(want+"\n")); err != nil {
		a.log.Error("owner connection string file not updated after a key change", "file", path, "err", err)
		return
	}
	a.log.Info("owner connection string file updated after a key change", "file", path)
}
