package presence

import (
	"time"
)

// Kind says what a ConnectionEvent records.
type Kind string

const (
	// Connected: a device's session was established (CONNACK accepted).
	Connected Kind = "connected"
	// Disconnected: a device's established session ended, for Reason.
	Disconnected Kind = "disconnected"
	// Refused: a connection attempt was refused before a session existed
	// (bad token, unknown or disabled device, malformed CONNECT, timeout…).
	// Refusals carry no sequence number: they change no device's state.
	Refused Kind = "refused"
)

// Reason is the typed cause of a disconnect or refusal.
type Reason string

const (
	ReasonNone           Reason = ""
	ReasonClient         Reason = "client"          // client sent DISCONNECT
	ReasonNetwork        Reason = "network"         // TCP closed/reset without DISCONNECT
	ReasonKeepAlive      Reason = "keep-alive"      // nothing received for 1.5× keep-alive
	ReasonTakeover       Reason = "takeover"        // a new connection with the same id
	ReasonTokenExpired   Reason = "token-expired"   // the session's SAS token expired
	ReasonDisabled       Reason = "disabled"        // device disabled in the registry
	ReasonDeleted        Reason = "deleted"         // device deleted from the registry
	ReasonServerShutdown Reason = "server-shutdown" // the hub stopped
	ReasonHubRestart     Reason = "hub-restart"     // the hub died with the session open; found at restart
	ReasonNodeLost       Reason = "node-lost"       // the cluster node holding the session died; recorded by a survivor
	ReasonProtocolError  Reason = "protocol-error"  // malformed or forbidden packet
	ReasonAuthFailed     Reason = "auth-failed"     // refused: token/key/identity wrong
	ReasonConnectTimeout Reason = "connect-timeout" // refused: no CONNECT in time
	ReasonServerError    Reason = "server-error"    // refused: the hub could not decide

	// Throttling (internal/throttle): refusals of new connections by the
	// limit that refused them, and ends of sessions whose messages were
	// refused. ThrottleScope maps them to the metrics' Scope.
	ReasonThrottledHub       Reason = "throttled-hub"          // refused: hub-wide new-connection rate
	ReasonThrottledAddress   Reason = "throttled-address"      // refused: new connections per source address
	ReasonThrottledDevice    Reason = "throttled-device"       // refused: connects per device (429005)
	ReasonThrottledHandshake Reason = "throttled-handshake"    // refused: no TLS handshake slot in time
	ReasonThrottledMessages  Reason = "throttled-messages"     // ended: the device's D2C message rate
	ReasonThrottledHubMsgs   Reason = "throttled-hub-messages" // ended: the hub's D2C message rate
	ReasonQuotaExceeded      Reason = "quota-exceeded"         // ended: the daily message quota (403002)
)

// ThrottleScope is the Scope dimension of a throttling reason: for
// refused connects hub, address, device or handshake; for ended sessions
// device, hub or quota. ok is false for other reasons.
func ThrottleScope(r Reason) (scope string, connect, ok bool) {
	switch r {
	case ReasonThrottledHub:
		return "hub", true, true
	case ReasonThrottledAddress:
		return "address", true, true
	case ReasonThrottledDevice:
		return "device", true, true
	case ReasonThrottledHandshake:
		return "handshake", true, true
	case ReasonThrottledMessages:
		return "device", false, true
	case ReasonThrottledHubMsgs:
		return "hub", false, true
	case ReasonQuotaExceeded:
		return "quota", false, true
	}
	return "", false, false
}

// AuthFailure is the typed cause of a refusal with ReasonAuthFailed: the
// Reason dimension of the deviceAuthFailures metric, low-cardinality.
type AuthFailure string

const (
	AuthNone                     AuthFailure = ""
	AuthTokenExpired             AuthFailure = "token-expired"
	AuthBadSignature             AuthFailure = "bad-signature" // wrong key, or none to verify with
	AuthMalformedToken           AuthFailure = "malformed-token"
	AuthDeviceNotFound           AuthFailure = "device-not-found"
	AuthDeviceDisabled           AuthFailure = "device-disabled"
	AuthBadUsername              AuthFailure = "bad-username"
	AuthWrongHub                 AuthFailure = "wrong-hub"
	AuthClientIDMismatch         AuthFailure = "client-id-mismatch"
	AuthModuleNotSupported       AuthFailure = "module-not-supported"
	AuthNoToken                  AuthFailure = "no-token"
	AuthWrongResource            AuthFailure = "wrong-resource"
	AuthUnknownPolicy            AuthFailure = "unknown-policy"
	AuthPolicyLacksDeviceConnect AuthFailure = "policy-lacks-device-connect"
	// X.509 (the values of x509auth.Failure, and two mix-ups).
	AuthNoCertificate        AuthFailure = "no-certificate"      // an X.509 device presented no client certificate
	AuthCertificateExpired   AuthFailure = "certificate-expired" // expired or not yet valid
	AuthThumbprintMismatch   AuthFailure = "thumbprint-mismatch" // selfSigned: neither registered thumbprint
	AuthUnknownCA            AuthFailure = "ca-unknown"          // chains to no registered CA
	AuthUnverifiedCA         AuthFailure = "ca-unverified"       // chains to a CA without proof of possession
	AuthCNMismatch           AuthFailure = "cn-mismatch"         // subject CN is not the device id
	AuthSASDeviceCertificate AuthFailure = "sas-device-certificate"
	AuthX509DeviceToken      AuthFailure = "x509-device-token"
	AuthOther                AuthFailure = "other" // none of the above
)

// Result is an IoT Hub error code with its name, as the Connections log shows
// them (ResultType, ResultDescription).
type Result struct {
	Type        string // "404104"; "" for success
	Description string // "DeviceConnectionClosedRemotely"
}

// Well-known results (reference/iothub-facts.md §3).
var (
	ResultOK                      = Result{}
	ResultTakeover                = Result{"400027", "ConnectionForcefullyClosedOnNewConnection"}
	ResultClosedRemotely          = Result{"404104", "DeviceConnectionClosedRemotely"}
	ResultUnauthorized            = Result{"401003", "IoTHubUnauthorized"}
	ResultBadRequest              = Result{"400000", "GenericBadRequest"}
	ResultServerError             = Result{"500001", "ServerError"}
	ResultTimeout                 = Result{"500008", "GenericTimeout"}
	ResultLinkCreationConflict    = Result{"409002", "LinkCreationConflict"}
	ResultDeviceNotFoundOnConnect = Result{"401003", "IoTHubUnauthorized"}
	ResultThrottled               = Result{"429001", "ThrottlingException"}
	ResultDeviceThrottled         = Result{"429005", "DeviceThrottlingLimitExceeded"}
	ResultQuotaExceeded           = Result{"403002", "IotHubQuotaExceeded"}
)

// ConnectionEvent is one change of a device's connection, or one refusal.
// It is the unit the journal stores and every consumer (log, events,
// metrics) reads. Field names are the JSON wire form in the journal.
type ConnectionEvent struct {
	// ID is stable for the event: "<deviceId>/<sequence>" for state changes,
	// a random id for refusals. Consumers use it to drop duplicates.
	ID       string    `json:"id"`
	Kind     Kind      `json:"kind"`
	Time     time.Time `json:"time"`
	Hub      string    `json:"hub"`
	DeviceID string    `json:"deviceId"`
	ModuleID string    `json:"moduleId,omitempty"`
	// Sequence is 64 upper-case hex digits, strictly increasing per device
	// across hub restarts (see sequence.go). Empty for refusals.
	Sequence string `json:"sequenceNumber,omitempty"`
	Reason   Reason `json:"reason,omitempty"`
	Result   Result `json:"result"`
	// AuthFailure is set on refusals with ReasonAuthFailed. Events that
	// predate it are given one from Detail when the journal decodes them.
	AuthFailure AuthFailure `json:"authFailure,omitempty"`
	// Detail is a human explanation (e.g. "token expired at …").
	Detail string `json:"detail,omitempty"`
	// Protocol is "MQTT" or "MQTT-WS"; ProtocolVersion 3, 4 (3.1.1) or 5.
	Protocol        string `json:"protocol,omitempty"`
	ProtocolVersion byte   `json:"protocolVersion,omitempty"`
	MaskedIP        string `json:"maskedIpAddress,omitempty"`
	SDKVersion      string `json:"sdkVersion,omitempty"`
	// AuthType is "sas" (device key), "policy:<name>" (skn), "selfSigned"
	// or "certificateAuthority" (X.509), "" if unknown. Refusals carry it
	// when the device's type was known (X.509 ones, and SAS mix-ups).
	AuthType  string `json:"authType,omitempty"`
	SessionID string `json:"sessionId,omitempty"`
	// ConnectedAt and DurationMs describe the ended session (disconnects).
	ConnectedAt time.Time `json:"connectedAt,omitzero"`
	DurationMs  int64     `json:"durationMs,omitempty"`
	// IdleMs is, for disconnects, how long the device had sent nothing
	// (no message since its connect or its last telemetry; pings are not
	// counted) when the session ended. A NAT or firewall that drops idle
	// flows ends sessions after a near-constant idle time.
	IdleMs int64 `json:"idleMs,omitempty"`
	// TokenExpiry is the session's SAS expiry (connects and disconnects).
	TokenExpiry time.Time `json:"tokenExpiry,omitzero"`
	// CleanSession is the MQTT clean-session flag of the CONNECT.
	CleanSession bool `json:"cleanSession,omitempty"`
	// KeepAliveSeconds is the CONNECT keep-alive.
	KeepAliveSeconds uint16 `json:"keepAlive,omitempty"`
	// TokenRenewal marks a connect that completes a SAS-token renewal: the
	// device's previous session ended by client DISCONNECT or token expiry
	// less than the renewal grace ago, and the new token expires later.
	// RenewalOf is the sequence number of that session's disconnect.
	TokenRenewal bool   `json:"tokenRenewal,omitempty"`
	RenewalOf    string `json:"renewalOf,omitempty"`
	// Count is how many attempts a refusal stands for (0 means 1): the
	// broker journals the refusals it makes before a TLS handshake (no
	// device id: a throttle's, by thousands a second in a storm) together,
	// one event per reason and masked address every 100 ms; the log has a
	// record per attempt, the metrics count each.
	Count int `json:"count,omitempty"`

	// Recorded is the session's callback on its connected event (see
	// Session.Recorded); never serialised.
	Recorded func(error) `json:"-"`
}

// Attempts is how many connection attempts the event stands for (Count,
// at least 1).
func (e ConnectionEvent) Attempts() int { return max(e.Count, 1) }

// IsError reports whether the event is logged at Level Error.
func (e ConnectionEvent) IsError() bool { return e.Result.Type != "" }
