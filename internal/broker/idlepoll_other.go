//go:build !linux

package broker

// idlePoller needs epoll: elsewhere an idle session's reader waits on its
// own goroutine (idlepark.go).
type idlePoller struct{}

func newIdlePoller() *idlePoller         { return nil }
func (p *idlePoller) add(*session) bool  { return false }
func (p *idlePoller) forget(*session)    {}
func (p *idlePoller) stop()              {}
func fdOf(*wakeConn) (fd int32, ok bool) { return -1, false }
