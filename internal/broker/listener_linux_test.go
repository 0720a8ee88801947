//go:build linux

package broker

import (
	"testing"

	"golang.org/x/sys/unix"
)

// The MQTT listeners accept connections without TCP keep-alive: MQTT's
// own keep-alive ends a silent device's session (mqttListen).
func TestMQTTConnectionsHaveNoTCPKeepAlive(t *testing.T) {
	h := startTestHub(t)
	h.connect("d1", 4)
	s := h.b.table.live("d1")
	h.waitFor("d1 to park", func() bool { return s.parkState.Load() == parkParked })
	on, err := unix.GetsockoptInt(int(s.fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE)
	if err != nil {
		t.Fatal(err)
	}
	if on != 0 {
		t.Fatal("an accepted MQTT connection has TCP keep-alive on")
	}
}
