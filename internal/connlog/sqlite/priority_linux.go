package sqlite

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// queryNice is the nice value of a read query's thread: queries are
// background work next to the hub's device traffic and API, and a query
// can keep a core busy for its whole 30 s (BenchmarkQueryBudget).
const queryNice = 10

// inBackground runs f on a thread of its own with a lower CPU priority
// (nice queryNice) and waits for it. An unprivileged process cannot raise
// a thread's priority again, so the thread is not reused: f's goroutine
// ends locked to it, and the runtime retires the thread with it.
func inBackground(f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Best effort: without it the query runs at normal priority.
		_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), queryNice)
		done <- f()
	}()
	return <-done
}
