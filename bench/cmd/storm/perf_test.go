package main

import "testing"

// Stacks as perf script prints them (leaf first), cut from the profiles of a
// TLS storm against Tether 72f0429 and bare mochi (accept12, session 12).
func TestPerfCategoryOf(t *testing.T) {
	tetherConnack := []string{
		"tcp_sendmsg", "ksys_write", "do_syscall_64", "entry_SYSCALL_64_after_hwframe",
		"internal/runtime/syscall/linux.Syscall6", "syscall.RawSyscall",
		"github.com/tether-hub/tether/internal/broker.rawIO",
		"github.com/tether-hub/tether/internal/broker.(*wakeConn).writeNow",
		"github.com/tether-hub/tether/internal/broker.(*wakeConn).Write",
		"github.com/tether-hub/tether/internal/broker.(*recordConn).Write",
		"crypto/tls.(*Conn).writeRecordLocked", "crypto/tls.(*Conn).Write",
		"github.com/tether-hub/tether/internal/broker.(*session).writeLocked",
		"github.com/tether-hub/tether/internal/broker.(*session).write",
		"github.com/tether-hub/tether/internal/broker.(*session).establish",
		"github.com/tether-hub/tether/internal/broker.(*session).connect",
		"github.com/tether-hub/tether/internal/broker.(*session).serve",
		"github.com/tether-hub/tether/internal/broker.(*connectors).worker",
		"runtime.goexit.abi0",
	}
	bareConnack := []string{
		"net.(*TCPConn).Write", "crypto/tls.(*Conn).writeRecordLocked", "crypto/tls.(*Conn).Write",
		"github.com/mochi-mqtt/server/v2.(*Client).WritePacket",
		"github.com/mochi-mqtt/server/v2.(*Server).SendConnack",
		"github.com/mochi-mqtt/server/v2.(*Server).attachClient",
		"github.com/mochi-mqtt/server/v2.(*Server).EstablishConnection",
		"runtime.goexit.abi0",
	}
	bareHandshake := []string{
		"crypto/internal/fips140/nistec.p256Sqr.abi0",
		"crypto/tls.(*serverHandshakeState).doFullHandshake",
		"crypto/tls.(*Conn).serverHandshake", "crypto/tls.(*Conn).handshakeContext",
		"crypto/tls.(*Conn).Read",
		"github.com/mochi-mqtt/server/v2.(*Server).readConnectionPacket",
		"github.com/mochi-mqtt/server/v2.(*Server).attachClient",
	}
	brokenP256 := []string{"p256MulInternal"} // assembly without a frame chain
	tetherPresence := []string{
		"runtime.mallocgc",
		"github.com/tether-hub/tether/internal/presence.(*Tracker).Connect",
		"github.com/tether-hub/tether/internal/broker.(*session).establish",
		"github.com/tether-hub/tether/internal/broker.(*session).connect",
	}
	for _, c := range []struct {
		stack []string
		want  string
	}{
		{tetherConnack, "CONNACK write (record seal, write(2))"},
		{bareConnack, "CONNACK write (record seal, write(2))"},
		{bareHandshake, "TLS handshake"},
		{brokenP256, "TLS handshake"},
		{tetherPresence, "presence (Tracker.Connect, its queue)"},
		{[]string{"runtime.scanobject", "runtime.gcBgMarkWorker"}, "GC background marking"},
		{[]string{"github.com/nats-io/nats-server/v2/server.(*msgBlock).writeAt"}, "embedded NATS server (JetStream)"},
		{[]string{"runtime.findRunnable", "runtime.schedule"}, "Go runtime elsewhere (scheduler, sysmon, timers, allocation)"},
		{[]string{"[unknown]"}, perfOther},
	} {
		if got := perfCategoryOf(c.stack); got != c.want {
			t.Errorf("%s…: got %q, want %q", c.stack[0], got, c.want)
		}
	}
}
