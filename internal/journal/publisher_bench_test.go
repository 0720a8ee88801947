package journal

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/telemetry"
)

// BenchmarkPublisher: one op is one message stored and its Done called,
// through an embedded server, the window full. "telemetry" is the QoS 1
// path (no id, no key); "keyed" gives each message a device key, cycling
// over 10,000 devices (more than the window: nothing waits behind another,
// so it measures what keying costs); "connection events" are
// ConnectionEventMsg's, keyed, encoded by the publisher.
//
//	go test -run X -bench Publisher -benchtime 200000x ./internal/journal/
func BenchmarkPublisher(b *testing.B) {
	b.Run("telemetry", func(b *testing.B) {
		benchPublish(b, func(n int) Msg {
			return TelemetryMsg(telemetry.Message{DeviceID: "dev-" + strconv.Itoa(n%10000), Payload: make([]byte, 64), EnqueuedTime: time.Now()})
		})
	})
	b.Run("connection events", func(b *testing.B) {
		benchPublish(b, func(n int) Msg {
			dev := "dev-" + strconv.Itoa(n%10000)
			return ConnectionEventMsg(presence.ConnectionEvent{
				ID: dev + "/" + strconv.Itoa(n), Kind: presence.Connected, Time: time.Now(), Hub: "hub",
				DeviceID: dev, Sequence: strconv.Itoa(n), Protocol: "MQTT", ProtocolVersion: 4,
				MaskedIP: "127.0.0.x", SDKVersion: "azure-iot-device/1.18.4 (node v20.20.2; Debian 12; x64)",
				AuthType: "sas", SessionID: "0123456789abcdef", TokenExpiry: time.Now().Add(time.Hour), KeepAliveSeconds: 60,
			})
		})
	})
	b.Run("keyed", func(b *testing.B) {
		benchPublish(b, func(n int) Msg {
			dev := "dev-" + strconv.Itoa(n%10000)
			return Msg{Subject: ConnSubject(dev, "connected"), ID: strconv.Itoa(n), Key: dev, Data: make([]byte, 64)}
		})
	})
}

func benchPublish(b *testing.B, msg func(int) Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	j, err := Open(ctx, Options{DataDir: b.TempDir()})
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	p := NewPublisher(j.JS, 4096, slog.New(slog.DiscardHandler))
	msgs := make([]Msg, b.N)
	var wg sync.WaitGroup
	wg.Add(b.N)
	for n := range msgs {
		msgs[n] = msg(n)
		msgs[n].Done = func(err error) {
			if err != nil {
				b.Error(err)
			}
			wg.Done()
		}
	}
	b.ResetTimer()
	for _, m := range msgs {
		if err := p.Publish(m); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.StopTimer()
	_ = p.Close(context.Background())
}
