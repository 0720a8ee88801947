package delivery

import "time"

// Clock is the engine's time source for everything the tests control:
// retry delays, time-to-live, the renewal grace and the POST timeout.
// JetStream's own timers (AckWait) run on the server's clock and are not
// behind it.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine (or synchronously, for a
	// fake clock) once d has passed; f must not block.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc.
type Timer interface {
	// Stop prevents the call if it has not happened; it reports whether it
	// did so.
	Stop() bool
}

// SystemClock is the wall clock.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
