//go:build !unix

package datadir

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("would block")

// flock is a no-op where there is no flock(2): the data dir is not
// protected against a second process there.
func flock(*os.File) error { return nil }
