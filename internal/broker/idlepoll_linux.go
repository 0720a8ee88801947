//go:build linux

package broker

import (
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// idlePoller holds the idle sessions of MQTT listeners that have no
// goroutine at all (idlepark.go): their sockets wait in an epoll set of
// the broker's own, and one goroutine, whose stack grew once and stays
// grown, answers their PINGREQs itself. The epoll set waits in the
// runtime's poller like any socket (it is readable when one of its
// sockets is), so an idle hub sleeps as before, and a PINGREQ wakes one
// thread that reads, decrypts, answers and waits again: no goroutine is
// started or readied, no stack grows, no second thread is woken.
//
// Each socket is in the set one-shot: once reported it stays out until
// its session parks again, so exactly one party (the poller, the
// session's keep-alive timer or a hub request, whichever wins the
// session's park state) handles it.
type idlePoller struct {
	epfd int
	file *os.File // epfd, in the runtime's poller
	rc   syscall.RawConn

	mu     sync.Mutex
	parked map[uint64]*session // by parkID: every session that has parked and not ended
	nextID uint64
	done   chan struct{} // closed when the poller's goroutine returns
}

func newIdlePoller() *idlePoller {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return nil
	}
	f := os.NewFile(uintptr(epfd), "idle-sessions")
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil
	}
	p := &idlePoller{epfd: epfd, file: f, rc: rc, parked: map[uint64]*session{}, done: make(chan struct{})}
	go p.run()
	return p
}

// add makes s parked and puts its socket in the set (again). It reports
// false when the socket cannot be added (s stays running). Everything s
// needs while parked is set before; from the state change on, the poller,
// the keep-alive timer or a hub request may own s.
func (p *idlePoller) add(s *session) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.parkID == 0 {
		p.nextID++
		s.parkID = p.nextID
		p.parked[s.parkID] = s
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT,
		Fd: int32(s.parkID), Pad: int32(s.parkID >> 32)}
	op := unix.EPOLL_CTL_MOD
	if !s.inPoller {
		op = unix.EPOLL_CTL_ADD
	}
	if errno := epollCtl(p.epfd, op, int(s.fd), &ev); errno != 0 {
		return false
	}
	s.inPoller = true
	s.parkState.Store(parkParked)
	return true
}

// forget drops an ended session (its socket left the set when it closed).
func (p *idlePoller) forget(s *session) {
	p.mu.Lock()
	delete(p.parked, s.parkID)
	p.mu.Unlock()
}

// run waits for parked sockets with input and hands each to its session.
// A wait that returned fewer events than it had room for left none ready,
// so the poller waits for the set again at once rather than asking it a
// second time: a socket that becomes ready from then on (input, or a
// re-armed socket that already has some) makes the set readable again,
// which the runtime's poller records even before the wait begins.
func (p *idlePoller) run() {
	defer close(p.done)
	var evs [64]unix.EpollEvent
	_ = p.rc.Read(func(fd uintptr) bool {
		for {
			n, errno := epollWaitNow(int(fd), evs[:])
			switch errno {
			case 0:
			case syscall.EINTR:
				continue
			default:
				return true // closed (stop)
			}
			p.hand(evs[:n])
			if n < len(evs) {
				return false // wait until the set is readable
			}
		}
	}) // an error: closed (stop)
}

// hand runs the sessions whose sockets were reported, if the poller wins
// them (parkState).
func (p *idlePoller) hand(evs []unix.EpollEvent) {
	for _, ev := range evs {
		id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
		p.mu.Lock()
		s := p.parked[id]
		won := s != nil && s.parkState.CompareAndSwap(parkParked, parkRunning)
		p.mu.Unlock()
		if won {
			s.ready()
		}
	}
}

// stop ends the poller once no session is left (Stop).
func (p *idlePoller) stop() {
	_ = p.file.Close()
	<-p.done
}

// fdOf is the socket's descriptor, for the set.
func fdOf(c *wakeConn) (int32, bool) {
	rc, err := c.TCPConn.SyscallConn()
	if err != nil {
		return -1, false
	}
	fd := int32(-1)
	if rc.Control(func(u uintptr) { fd = int32(u) }) != nil {
		return -1, false
	}
	return fd, fd >= 0
}

// epollCtl and epollWaitNow are raw system calls (wakeconn_raw_linux.go:
// no sysmon wake-up); epoll_pwait with a zero timeout never blocks.
func epollCtl(epfd, op, fd int, ev *unix.EpollEvent) syscall.Errno {
	_, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return e
}

func epollWaitNow(epfd int, evs []unix.EpollEvent) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}
