package broker

import (
	"fmt"
	"strings"

	"github.com/mochi-mqtt/server/v2/packets"
)

// handle acts on one packet from an established session. over reports that
// the packet ended the session, for c.
func (s *session) handle(header byte, body []byte) (c cause, over bool) {
	pk := packets.Packet{ProtocolVersion: s.version}
	if err := pk.FixedHeader.Decode(header); err != nil {
		return causeProtocol(v5MalformedPacket, "%s: %v", packetName(header), err), true
	}
	pk.FixedHeader.Remaining = len(body)
	switch pk.FixedHeader.Type {
	case packets.Publish:
		return s.publish(&pk, body)
	case packets.Puback:
		if err := pk.PubackDecode(body); err != nil {
			return causeProtocol(v5MalformedPacket, "malformed PUBACK: %v", err), true
		}
		s.c2dAcked(pk.PacketID)
	case packets.Subscribe:
		return s.subscribe(&pk, body)
	case packets.Unsubscribe:
		return s.unsubscribe(&pk, body)
	case packets.Pingreq:
		s.send(pingresp)
	case packets.Disconnect:
		return causeClient, true
	case packets.Connect:
		return causeProtocol(v5ProtocolError, "a second CONNECT on an open connection"), true
	case packets.Pubrec, packets.Pubrel, packets.Pubcomp:
		return causeProtocol(v5QoSNotSupported, "%s: QoS 2 is not supported (IoT Hub takes QoS 0 and 1)", packetName(header)), true
	default:
		return causeProtocol(v5ProtocolError, "a client does not send %s packets", packetName(header)), true
	}
	return cause{}, false
}

// publish takes a device's PUBLISH: telemetry goes to the journal; any
// topic the device may not use ends the session (IoT Hub closes the
// connection; at QoS 0 as at QoS 1, and the log says why).
func (s *session) publish(pk *packets.Packet, body []byte) (cause, bool) {
	if pk.FixedHeader.Qos > 1 {
		return causeProtocol(v5QoSNotSupported, "PUBLISH with QoS %d: IoT Hub takes QoS 0 and 1", pk.FixedHeader.Qos), true
	}
	if err := pk.PublishDecode(body); err != nil {
		return causeProtocol(v5MalformedPacket, "malformed PUBLISH: %v", err), true
	}
	if code := pk.PublishValidate(0); code != packets.CodeSuccess {
		return causeProtocol(code.Code, "invalid PUBLISH: %s", code.Reason), true
	}
	if n := len(pk.Payload); n > s.b.opts.MaxMessageSize {
		return causeProtocol(v5PacketTooLarge, "a message of %d bytes on %s: IoT Hub's limit is %d bytes", n, pk.TopicName, s.b.opts.MaxMessageSize), true
	}
	switch route := routePublish(s.id.deviceID, pk.TopicName); route {
	case routeTelemetry:
		return s.telemetry(pk)
	case routeTwinGet, routeTwinReported:
		s.twinRequest(route, pk)
		return cause{}, false
	case routeMethodResponse:
		s.methodResponse(pk)
		return cause{}, false
	}
	return causeForbidden("published to topic %q, which the device may not use", strings.Clone(pk.TopicName)), true
}

// subscribe grants the device's own topics at QoS 1 at most and refuses
// the rest (SUBACK failure, logged); C2D waiting for the device follows.
func (s *session) subscribe(pk *packets.Packet, body []byte) (cause, bool) {
	if err := pk.SubscribeDecode(body); err != nil {
		return causeProtocol(v5MalformedPacket, "malformed SUBSCRIBE: %v", err), true
	}
	if code := pk.SubscribeValidate(); code != packets.CodeSuccess {
		return causeProtocol(code.Code, "invalid SUBSCRIBE: %s", code.Reason), true
	}
	codes := make([]byte, len(pk.Filters))
	var add subscription
	var c2dQoS byte
	for i, f := range pk.Filters {
		sub := routeSubscribe(s.id.deviceID, f.Filter)
		if sub == 0 {
			codes[i] = 0x80 // failure (3.1.1); unspecified error (5)
			if s.version == 5 {
				codes[i] = v5NotAuthorized
			}
			s.b.log.Warn("subscription refused: not a topic of this device", "device", s.id.deviceID, "filter", strings.Clone(f.Filter))
			continue
		}
		add |= sub
		codes[i] = min(f.Qos, 1)
		if sub == subC2D {
			c2dQoS = codes[i]
		}
	}
	subs := s.b.table.subscribe(s, add, 0, c2dQoS)
	s.send(s.ack(packets.Suback, pk.PacketID, codes))
	if add&subC2D != 0 && subs&subC2D != 0 {
		s.pushC2D()
	}
	if add&subMethods != 0 && subs&subMethods != 0 {
		s.b.wakeMethodCallers(s.deviceID())
	}
	return cause{}, false
}

func (s *session) unsubscribe(pk *packets.Packet, body []byte) (cause, bool) {
	if err := pk.UnsubscribeDecode(body); err != nil {
		return causeProtocol(v5MalformedPacket, "malformed UNSUBSCRIBE: %v", err), true
	}
	codes := make([]byte, len(pk.Filters))
	var remove subscription
	for i, f := range pk.Filters {
		sub := routeSubscribe(s.id.deviceID, f.Filter)
		if sub == 0 {
			codes[i] = 0x11 // no subscription existed
		}
		remove |= sub
	}
	s.b.table.subscribe(s, 0, remove, 0)
	s.send(s.ack(packets.Unsuback, pk.PacketID, codes))
	return cause{}, false
}

// packetName names a packet type for people.
func packetName(header byte) string {
	if name, ok := packets.PacketNames[header>>4]; ok {
		return strings.ToUpper(name)
	}
	return fmt.Sprintf("packet type %d", header>>4)
}
