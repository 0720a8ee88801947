package main

import (
	"github.com/spf13/pflag"

	"github.com/tether-hub/tether/internal/app"
)

// addLimitFlags adds the throttling flags of `tether serve` (docs/sizing.md
// says what each protects). 0 takes the default, a negative value turns a
// limit off.
func addLimitFlags(f *pflag.FlagSet, cfg *app.Config) {
	l := &cfg.Limits
	f.Float64Var(&l.ConnectRate, "max-connect-rate", 0, "new connections a second, hub-wide, each priced as a TLS handshake (0: sized at start to the cores and the server key, see the log; negative: off)")
	f.Float64Var(&l.PlainConnectRate, "max-plain-connect-rate", 0, "new plain-TCP connections a second, hub-wide, sharing --max-connect-rate's budget at their own price (0: sized at start with it, or the same rate when that is set; negative: no limit)")
	f.IntVar(&l.ConnectBurst, "connect-burst", 0, "new connections at once beyond the rate (0: one second's worth)")
	f.DurationVar(&l.ConnectQueue, "connect-queue", app.DefaultConnectQueue, "how long a new connection may wait for its turn under --max-connect-rate before it is refused")
	f.Float64Var(&l.AddressRate, "max-address-connect-rate", 0, "new connections a second per source address (0: off; devices behind one NAT share an address)")
	f.IntVar(&l.AddressBurst, "address-connect-burst", 0, "connections at once per source address (0: one second's worth)")
	f.Float64Var(&l.DeviceRate, "max-device-connect-rate", app.DefaultDeviceRate, "connects a second per device, sustained (an SDK in a reconnect loop gets 429005; negative: off)")
	f.IntVar(&l.DeviceBurst, "device-connect-burst", app.DefaultDeviceBurst, "connects at once per device")
	f.IntVar(&l.Handshakes, "max-handshakes", 0, "TLS handshakes in progress at most (0: three seconds of the connect rate, at least 64; negative: no cap)")
	f.DurationVar(&l.HandshakeQueue, "handshake-queue", app.DefaultHandshakeQueue, "how long an accepted connection may wait for a handshake slot")
	f.Float64Var(&l.MessageRate, "max-device-message-rate", 0, "D2C messages a second per device (0: off); a device over it is held back, then disconnected with 429001")
	f.IntVar(&l.MessageBurst, "device-message-burst", 0, "D2C messages at once per device (0: one second's worth)")
	f.Float64Var(&l.HubMessageRate, "max-hub-message-rate", 0, "D2C messages a second from all devices (0: off)")
	f.IntVar(&l.HubMessageBurst, "hub-message-burst", 0, "D2C messages at once, hub-wide (0: one second's worth)")
	f.DurationVar(&l.MessageQueue, "message-queue", app.DefaultMessageQueue, "how long messages over a rate are held back before the device is disconnected")
	f.Int64Var(&l.DailyQuota, "daily-message-quota", 0, "D2C messages a UTC day (0: none); past it devices are disconnected with 403002")
	f.BoolVar(&cfg.NoThrottle, "no-throttle", false, "turn every limit above off")
}
