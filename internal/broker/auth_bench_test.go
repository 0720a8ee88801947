package broker

import (
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/sas"
)

// BenchmarkAuthenticate is the per-CONNECT cost of checking a device's
// username and SAS token (the hook's share of a connect).
func BenchmarkAuthenticate(b *testing.B) {
	const key = "c2VjcmV0LWtleS1mb3ItdGVzdHMtMzItYnl0ZXMhIQ=="
	br, err := New(Options{
		HubName:  "hub",
		Devices:  func(string) (Credentials, bool) { return Credentials{Keys: [2]string{key, ""}, Enabled: true}, true },
		Policies: func(string) ([2]string, bool, bool) { return [2]string{}, false, false },
		Presence: presence.NewTracker(presence.Options{Sink: func(presence.ConnectionEvent) {}}),
	})
	if err != nil {
		b.Fatal(err)
	}
	tok, _ := sas.Sign(sas.DeviceResource("hub", "dev-1"), key, "", time.Now().Add(time.Hour))
	user := []byte("hub/dev-1/?api-version=2021-04-12&DeviceClientType=azure-iot-device%2F1.18.4%20(node%20v20.20.2%3B%20Debian%2012%3B%20x64)")
	pass := []byte(tok)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, ref := br.authenticate("dev-1", user, pass, nil, now); ref != nil {
			b.Fatal(ref)
		}
	}
}
