package main

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// allowHook is mochi's hooks/auth.AllowHook, restated: that package imports
// gopkg.in/yaml.v3 (for its ledger), which the module's go.sum does not pin,
// and the benchmark must not change go.mod. Behaviour is the same: every
// CONNECT is accepted and every topic allowed, with no per-connect work.
type allowHook struct {
	mqtt.HookBase
}

var _ mqtt.Hook = (*allowHook)(nil)

func (h *allowHook) ID() string { return "allow-all-auth" }

func (h *allowHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *allowHook) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (h *allowHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }
