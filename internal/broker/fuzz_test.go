package broker

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/telemetry"
)

// FuzzSession feeds a random byte stream to a session, as a device would
// send it: the session must end (no goroutine left behind) without a
// panic, whatever the bytes. Seeds start with a valid CONNECT so the fuzzer
// reaches established sessions too.
func FuzzSession(f *testing.F) {
	connect := connectPacket(4, "d1", username("d1"), token(f, "d1"), 60, false)
	connect5 := connectPacket(5, "d1", username("d1"), token(f, "d1"), 60, false)
	seeds := [][]byte{
		connect,
		append(append([]byte{}, connect...), publishPacket("devices/d1/messages/events/a=b", 1, 1, []byte("x"))...),
		append(append([]byte{}, connect...), appendSubscribe(1, "devices/d1/messages/devicebound/#", "#")...),
		append(append([]byte{}, connect5...), publishPacketV(5, "devices/d1/messages/events/", 0, 0, []byte("x"))...),
		append(append([]byte{}, connect...), 0x30, 0xff, 0xff, 0xff, 0x7f),
		append(append([]byte{}, connect...), pingreq...),
		append(append([]byte{}, connect...), disconnectV3...),
		{0x10, 0x02, 0, 0},
		[]byte("GET / HTTP/1.1\r\n\r\n"),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	b, err := New(Options{
		HubName: testHubName, ConnectTimeout: time.Second, Logger: slog.New(slog.DiscardHandler),
		Presence: presence.NewTracker(presence.Options{Hub: testHubName, Epoch: 1, Sink: func(ev presence.ConnectionEvent) {
			if ev.Recorded != nil {
				ev.Recorded(nil)
			}
		}}),
		Devices: func(id string) (Credentials, bool) {
			return Credentials{Keys: [2]string{testKey, ""}, Enabled: true}, strings.HasPrefix(id, "d")
		},
		Policies: func(string) ([2]string, bool, bool) { return [2]string{}, false, false },
		Telemetry: func(_ telemetry.Message, stored func(error)) {
			if stored != nil {
				stored(nil)
			}
		},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		server, device := net.Pipe()
		s := b.newSession(server, nil, protoMQTT, "127.0.0.1:1")
		done := make(chan struct{})
		go func() {
			s.serve(nil, nil, 0)
			<-s.endedChan() // established sessions end on their reader
			close(done)
		}()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = io.Copy(io.Discard, device) }()
		_ = device.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = device.Write(input)
		_ = device.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("the session did not end after its device closed (input % x)", input[:min(len(input), 32)])
		}
		wg.Wait()
	})
}
