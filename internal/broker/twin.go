package broker

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Device twins over MQTT (reference/iothub-facts.md §5.4): a device asks
// on $iothub/twin/GET/?$rid=… and $iothub/twin/PATCH/properties/reported/?$rid=…
// and gets the answer on $iothub/twin/res/{status}/?$rid=…[&$version=…]
// if it subscribed to $iothub/twin/res/#; desired-property changes are
// pushed on $iothub/twin/PATCH/properties/desired/?$version=… to devices
// subscribed to $iothub/twin/PATCH/properties/desired/#. The documents
// themselves are the hub's business (Options.Twins); the broker moves the
// bytes. Everything goes to the device at QoS 0, as IoT Hub sends it.

// Twins serves the device side of device twins.
type Twins interface {
	// Twin answers a GET: 200 and {"desired":{…},"reported":{…}}, or an
	// error status and an IoT Hub error body.
	Twin(dev Requester) (status int, body []byte)
	// PatchReported applies a reported-properties patch: 204 and the new
	// reported version, or an error status and an IoT Hub error body.
	PatchReported(dev Requester, patch []byte) (status int, version int64, body []byte)
}

// Requester is the device session a twin request came on, for the
// operation's log record.
type Requester struct {
	DeviceID, Protocol, SDKVersion, MaskedIP, AuthType string
}

func (s *session) requester() Requester {
	return Requester{DeviceID: s.deviceID(), Protocol: s.proto(), SDKVersion: s.id.sdkVersion, MaskedIP: maskIP(s.remote), AuthType: s.id.authType}
}

// maxRequestID bounds a $rid: the SDKs use UUIDs and small integers.
const maxRequestID = 128

// twinRequest answers a device's twin GET or reported patch. It runs on
// the session's reader, so a device's requests are answered in order.
func (s *session) twinRequest(route publishRoute, pk *packets.Packet) {
	if pk.FixedHeader.Qos == 1 {
		s.send(appendPuback(nil, pk.PacketID))
	}
	rid, ok := topicParam(pk.TopicName, "$rid")
	var status int
	var version int64
	var body []byte
	switch {
	case !ok || rid == "" || len(rid) > maxRequestID:
		rid = ""
		status, body = 400, errorBody(400004, "ArgumentInvalid", "a twin request needs a $rid of 1 to "+strconv.Itoa(maxRequestID)+" characters in its topic, e.g. $iothub/twin/GET/?$rid=1")
	case s.b.opts.Twins == nil:
		status, body = 503, errorBody(503000, "ServiceUnavailable", "this hub does not serve device twins")
	case route == routeTwinGet:
		status, body = s.b.opts.Twins.Twin(s.requester())
	default:
		status, version, body = s.b.opts.Twins.PatchReported(s.requester(), pk.Payload)
	}
	if s.b.table.subscribed(s)&subTwinResponse == 0 {
		s.b.log.Warn("twin response not sent: the device has not subscribed to $iothub/twin/res/#", "device", s.deviceID(), "rid", rid, "status", status)
		return
	}
	topic := "$iothub/twin/res/" + strconv.Itoa(status) + "/?$rid=" + rid
	if status == 204 {
		topic += "&$version=" + strconv.FormatInt(version, 10)
	}
	s.sendPublish(topic, body)
}

// PushDesired sends a desired-properties change (the patch with its
// "$version") to the device if it is connected and subscribed; it reports
// whether it was sent. IoT Hub does not queue these: a device that was
// away reads the whole twin when it comes back.
func (b *Broker) PushDesired(deviceID string, version int64, patch []byte) bool {
	s := b.table.live(deviceID)
	if s == nil || !s.established.Load() || b.table.subscribed(s)&subTwinDesired == 0 {
		return false
	}
	s.sendPublish("$iothub/twin/PATCH/properties/desired/?$version="+strconv.FormatInt(version, 10), patch)
	return true
}

// sendPublish queues a QoS 0 PUBLISH for the device.
func (s *session) sendPublish(topic string, payload []byte) {
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Publish},
		TopicName:       topic,
		Payload:         payload,
		ProtocolVersion: s.version,
	}
	var out bytes.Buffer
	if err := pk.PublishEncode(&out); err != nil {
		s.b.log.Error("encoding a PUBLISH", "device", s.deviceID(), "topic", topic, "err", err)
		return
	}
	s.send(out.Bytes())
}

// errorBody is IoT Hub's error answer on the twin and method topics: the
// SDKs fail a request on its errorCode member, whatever the status.
func errorBody(number int, code, message string) []byte {
	b, _ := json.Marshal(struct {
		ErrorCode int    `json:"errorCode"`
		Code      string `json:"code"`
		Message   string `json:"message"`
	}{number, code, message})
	return b
}
