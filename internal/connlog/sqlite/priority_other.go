//go:build !linux

package sqlite

// inBackground runs f; lowering one thread's priority is Linux-only.
func inBackground(f func() error) error { return f() }
