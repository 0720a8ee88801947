package connlog

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// ConnectionProperties is the properties_s object of a Connections record.
// The Azure keys come first, spelled as Azure spells them; Tether's extras
// follow and are omitted when empty. Shapes of the Azure keys:
//
//	deviceId         string
//	protocol         "Mqtt" | "MqttWs" (Azure's WebSocket spelling is unconfirmed;
//	                 "MqttWs" is the SDKs' transport name) | "" when unknown
//	authType         null, or a JSON string such as
//	                 {"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}
//	maskedIpAddress  "24.9.142.XXX" ("" when unknown)
//	statusCode       null on success, else the HTTP class of ResultType ("404")
//	errorMessage     "" on success, else "Device disconnected, see cause and
//	                 resolution at https://aka.ms/iothub<code>[; <detail>]"
//	sdkVersion       the DeviceClientType of the MQTT username; omitted when
//	                 unknown (Azure omits it on disconnects; Tether keeps it
//	                 when presence knows it)
type ConnectionProperties struct {
	DeviceID     string  `json:"deviceId"`
	Protocol     string  `json:"protocol"`
	AuthType     *string `json:"authType"`
	MaskedIP     string  `json:"maskedIpAddress"`
	StatusCode   *string `json:"statusCode"`
	ErrorMessage string  `json:"errorMessage"`
	SDKVersion   string  `json:"sdkVersion,omitempty"`

	// Tether extras.
	ModuleID       string `json:"moduleId,omitempty"`
	SessionID      string `json:"sessionId,omitempty"`
	SequenceNumber string `json:"sequenceNumber,omitempty"`
	Reason         string `json:"reason,omitempty"`
	// ConnectDurationMs is how long the ended session lasted (disconnects).
	ConnectDurationMs int64 `json:"connectDurationMs,omitempty"`
	// IdleMs is how long the device had sent nothing when its session
	// ended (disconnects; pings not counted).
	IdleMs int64 `json:"idleMs,omitempty"`
	// TokenExpiry is the session's SAS expiry, RFC 3339 UTC.
	TokenExpiry string `json:"tokenExpiry,omitempty"`
	// ProtocolVersion is the MQTT level: 3, 4 (3.1.1) or 5.
	ProtocolVersion byte `json:"protocolVersion,omitempty"`
	// KeepAlive is the CONNECT keep-alive in seconds (the hub closes with
	// 404104 after 1.5× it without traffic).
	KeepAlive uint16 `json:"keepAlive,omitempty"`
	// TokenRenewal marks the connect that completed a SAS-token renewal;
	// RenewalOf is the sequence number of the disconnect it follows, so a
	// query can pair them (the disconnect was logged before it was known).
	TokenRenewal bool   `json:"tokenRenewal,omitempty"`
	RenewalOf    string `json:"renewalOf,omitempty"`
}

// IdentityProperties is the properties_s object of a
// DeviceIdentityOperations record: Azure's two keys (maskedIpAddress is
// null: the journal does not carry the caller's address), then Tether's.
type IdentityProperties struct {
	MaskedIP *string `json:"maskedIpAddress"`
	DeviceID string  `json:"deviceId"`

	// Tether extras.
	Caller       string `json:"caller,omitempty"` // the policy that authorised the change
	Status       string `json:"status,omitempty"` // "enabled" | "disabled" after the change
	StatusReason string `json:"statusReason,omitempty"`
	GenerationID string `json:"generationId,omitempty"`
	ETag         string `json:"etag,omitempty"`
	// PrimaryKey and SecondaryKey are the keys' fingerprints after the
	// change (registry.KeyFingerprints): a rotation shows as a change of
	// one, with no secret in the log.
	PrimaryKey   string `json:"primaryKeyFingerprint,omitempty"`
	SecondaryKey string `json:"secondaryKeyFingerprint,omitempty"`
}

// marshalProperties encodes v compactly without HTML escaping: the
// reference for the hand-written appendJSON methods (properties_json.go).
func marshalProperties(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only strings and numbers go in: encoding cannot fail.
		panic("connlog: encoding properties: " + err.Error())
	}
	return strings.TrimRight(b.String(), "\n")
}

// Protocol names in properties_s (and the Protocol column).
const (
	ProtocolMqtt   = "Mqtt"
	ProtocolMqttWs = "MqttWs"
)

// protocolName maps presence's "MQTT"/"MQTT-WS" to the log's spelling;
// anything else passes through.
func protocolName(p string) string {
	switch strings.ToUpper(p) {
	case "MQTT":
		return ProtocolMqtt
	case "MQTT-WS", "MQTTWS", "MQTT_WS":
		return ProtocolMqttWs
	}
	return p
}

// authTypeJSON renders presence's AuthType as the authType value: "sas" (a
// device key) has scope "device"; "policy:<name>" (a token signed with a
// shared access policy, skn=…) has scope "hub", the spelling of Azure's
// older docs for hub-level credentials; "" is null. Other types keep
// scope "device".
func authTypeJSON(authType string) *string {
	var s string
	switch {
	case authType == "":
		return nil
	case authType == "sas":
		s = authDeviceSAS
	case strings.HasPrefix(authType, "policy:"):
		s = authHubSAS
	default:
		s = authTypeString("device", authType)
	}
	return &s
}

// The authType values of nearly every record, made once.
var (
	authDeviceSAS = authTypeString("device", "sas")
	authHubSAS    = authTypeString("hub", "sas")
)

func authTypeString(scope, typ string) string {
	return marshalProperties(struct {
		Scope                 string  `json:"scope"`
		Type                  string  `json:"type"`
		Issuer                string  `json:"issuer"`
		AcceptingIPFilterRule *string `json:"acceptingIpFilterRule"`
	}{scope, typ, "iothub", nil})
}

// statusCode is the HTTP class of an IoT Hub error code: "404" for
// "404104"; nil on success.
func statusCode(resultType string) *string {
	if resultType == "" {
		return nil
	}
	s := resultType
	if len(s) > 3 {
		s = s[:3]
	}
	return &s
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
