package events

// ExtensionKey is the member of data that holds Tether's additions. It is
// the only member Tether adds to IoT Hub's data objects; see the package
// documentation for why this is safe for Event Grid and CloudEvents
// consumers.
const ExtensionKey = "tether"

// Extension is data.tether of DeviceConnected and DeviceDisconnected: what
// the hub knows about the connection beyond IoT Hub's event. Empty members
// are left out, except tokenRenewal, which is always written so that a
// filter on it never meets a missing key.
type Extension struct {
	// Reason is the typed cause of a disconnect (presence.Reason: client,
	// network, keep-alive, takeover, token-expired, disabled, deleted,
	// server-shutdown, protocol-error).
	Reason string `json:"reason,omitempty"`
	// ResultType and ResultDescription are the IoT Hub error code and name
	// the Connections log records for the event ("404104",
	// "DeviceConnectionClosedRemotely"); empty for a clean event.
	ResultType        string `json:"resultType,omitempty"`
	ResultDescription string `json:"resultDescription,omitempty"`
	// Protocol is "MQTT" or "MQTT-WS"; ProtocolVersion the MQTT level
	// (3, 4 = 3.1.1, 5), as in the Connections log.
	Protocol        string `json:"protocol,omitempty"`
	ProtocolVersion byte   `json:"protocolVersion,omitempty"`
	// SessionID names one connection from connect to disconnect.
	SessionID string `json:"sessionId,omitempty"`
	// ConnectDurationMs is how long the ended session lasted (disconnects).
	ConnectDurationMs int64 `json:"connectDurationMs,omitempty"`
	// TokenRenewal marks one half of a SAS-token renewal pair: a
	// disconnect by the client or by token expiry followed, within the
	// grace period, by a reconnect of the same device with a token that
	// expires later (issue 3 §6). Subscriptions with suppressRenewals
	// receive neither half.
	TokenRenewal bool `json:"tokenRenewal"`
	// Detail is a human explanation ("token expired at …").
	Detail string `json:"detail,omitempty"`
}
