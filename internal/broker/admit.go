package broker

import (
	"bytes"
	"crypto/x509"
	"strings"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/telemetry"
)

// admit checks a decoded CONNECT as IoT Hub does (protocol, then
// authentication, then the will) and fills in the session from it. chain
// is the TLS client certificate chain (nil if none). The strings kept are
// copies: pk aliases the read buffer.
func (s *session) admit(pk *packets.Packet, chain []*x509.Certificate) *refusal {
	if ref := checkProtocol(pk); ref != nil {
		return ref
	}
	s.version = pk.ProtocolVersion
	s.keepAlive = pk.Connect.Keepalive
	s.idle = idleLimit(pk.Connect.Keepalive)
	s.cleanStart = pk.Connect.Clean
	s.persistent = !pk.Connect.Clean
	if s.version == 5 {
		s.persistent = pk.Properties.SessionExpiryInterval > 0
		if rm := pk.Properties.ReceiveMaximum; rm > 0 {
			s.receiveMax = min(rm, c2dInflight)
		}
	}
	id, ref := s.b.authenticate(pk.Connect.ClientIdentifier, pk.Connect.Username, pk.Connect.Password, chain, s.b.opts.Now())
	s.id = id
	if ref != nil {
		return ref
	}
	if !s.b.opts.Throttle.DeviceConnect(id.deviceID, time.Now()) {
		return s.b.deviceThrottled()
	}
	if pk.Connect.WillFlag {
		if routePublish(id.deviceID, pk.Connect.WillTopic) != routeTelemetry {
			return authRefusal(presence.AuthOther, packets.ErrNotAuthorized, "the will topic %q is not this device's telemetry topic devices/%s/messages/events/", pk.Connect.WillTopic, id.deviceID)
		}
		_, _, props, sys, err := telemetry.ParseEventsTopic(strings.Clone(pk.Connect.WillTopic))
		if err != nil {
			return &refusal{v3: packets.Err3NotAuthorized, v5: packets.ErrTopicNameInvalid,
				reason: presence.ReasonProtocolError, result: presence.ResultBadRequest, detail: "will topic: " + err.Error()}
		}
		if props == nil {
			props = map[string]string{}
		}
		props["iothub-MessageType"] = "Will"
		s.will = &telemetry.Message{DeviceID: id.deviceID, Payload: bytes.Clone(pk.Connect.WillPayload), Properties: props, SystemProperties: sys}
	}
	return nil
}

// checkProtocol accepts MQTT 3.1.1 and 5, as IoT Hub does. MQTT 3.1
// (MQIsdp) and unknown levels get "unacceptable protocol version"; a
// malformed CONNECT is closed without CONNACK for 3.1.1 (the protocol has
// no code for it) and answered with its reason code for 5.
func checkProtocol(pk *packets.Packet) *refusal {
	name := string(pk.Connect.ProtocolName)
	switch {
	case name == "MQIsdp":
		return protocolRefusal(packets.Err3UnsupportedProtocolVersion, packets.Code{}, "MQTT 3.1 (MQIsdp) is not supported; IoT Hub speaks MQTT 3.1.1 and 5")
	case name != "MQTT":
		return protocolRefusal(packets.Code{}, packets.Code{}, "protocol name %q is not MQTT", name)
	case pk.ProtocolVersion == 5:
	case pk.ProtocolVersion == 4:
	default:
		return protocolRefusal(packets.Err3UnsupportedProtocolVersion, packets.Code{}, "protocol level %d is not supported; IoT Hub speaks MQTT 3.1.1 (4) and 5", pk.ProtocolVersion)
	}
	// An empty password is left to authentication, which says why; an
	// empty will payload is legal MQTT (the codec refuses it).
	code := pk.ConnectValidate()
	if code == packets.ErrProtocolViolationWillFlagNoPayload && pk.Connect.WillTopic != "" && pk.Connect.WillQos <= 2 {
		code = packets.CodeSuccess
	}
	if code != packets.CodeSuccess && code != packets.ErrProtocolViolationFlagNoPassword {
		return protocolRefusal(packets.Code{}, code, "invalid CONNECT: %s", code.Reason)
	}
	return nil
}

// connack encodes a CONNACK. Accepted MQTT 5 sessions learn the hub's
// limits: QoS 1 at most, no retained messages, the in-flight window and
// the packet size IoT Hub allows.
func (s *session) connack(present bool, code packets.Code) []byte {
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connack},
		ProtocolVersion: s.version, SessionPresent: present, ReasonCode: code.Code,
	}
	if s.version == 5 && code == packets.CodeSuccess {
		pk.Properties = packets.Properties{
			MaximumQos: 1, MaximumQosFlag: true,
			RetainAvailable: 0, RetainAvailableFlag: true,
			ReceiveMaximum:     d2cInflight,
			MaximumPacketSize:  uint32(s.b.maxPacket()),
			SharedSubAvailable: 0, SharedSubAvailableFlag: true,
			SubIDAvailable: 0, SubIDAvailableFlag: true,
		}
	}
	var buf bytes.Buffer
	_ = pk.ConnackEncode(&buf)
	return buf.Bytes()
}

// refuse records a refused CONNECT, then answers it with its CONNACK code
// (none where the protocol has none): recording first keeps one client's
// successive attempts in order, and the answer waits for the record to be
// stored (as a connect's does), so a refusal the device was told of is in
// the log; one the journal could not store gets no answer, only the close.
// pk is nil for a refusal after admission.
func (s *session) refuse(pk *packets.Packet, ref *refusal) {
	ev := presence.ConnectionEvent{
		DeviceID: s.id.deviceID, ModuleID: s.id.moduleID, SDKVersion: s.id.sdkVersion, AuthType: s.id.authType,
		Protocol: s.proto(), ProtocolVersion: s.version, MaskedIP: maskIP(s.remote),
		Reason: ref.reason, Result: ref.result, Detail: ref.detail, AuthFailure: ref.auth,
		CleanSession: s.cleanStart, KeepAliveSeconds: s.keepAlive,
	}
	if pk != nil {
		ev.ProtocolVersion, ev.CleanSession, ev.KeepAliveSeconds = pk.ProtocolVersion, pk.Connect.Clean, pk.Connect.Keepalive
		if ev.DeviceID == "" {
			ev.DeviceID = strings.Clone(pk.Connect.ClientIdentifier)
		}
	}
	stored := make(chan error, 1)
	ev.Recorded = func(err error) { stored <- err }
	s.b.opts.Presence.Refuse(ev)
	version := s.version
	if pk != nil {
		version = pk.ProtocolVersion
	}
	code := ref.v5
	if version != 5 {
		code = ref.v3
	}
	if code.Code == 0 {
		return
	}
	if err := s.b.awaitStored(stored, ev.DeviceID); err != nil {
		s.b.log.Warn("closing a refused connection unanswered: the journal did not store its refusal", "device", ev.DeviceID, "err", err)
		return
	}
	s.version = version
	_ = s.write(s.connack(false, code))
}
