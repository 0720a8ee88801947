//go:build cgo && !sqlitelog

package app

// SetMigrateBatch makes the log migration copy n records a step, so a test
// sees several steps without writing tens of thousands of records, and
// returns the function that restores the default.
func SetMigrateBatch(n int) (restore func()) {
	old := migrateBatch
	migrateBatch = n
	return func() { migrateBatch = old }
}
