package broker

import "strings"

// IoT Hub is not a general broker: a device publishes to and subscribes
// on a fixed set of topics under its own id (reference/iothub-facts.md
// §5.4), so routing is a match against those few shapes, not a topic tree.

// publishRoute is where a device's PUBLISH goes.
type publishRoute int

const (
	routeForbidden      publishRoute = iota // not a topic this device may publish to
	routeTelemetry                          // devices/{id}/messages/events/[{bag}]
	routeTwinGet                            // $iothub/twin/GET/?$rid=…
	routeTwinReported                       // $iothub/twin/PATCH/properties/reported/?$rid=…
	routeMethodResponse                     // $iothub/methods/res/{status}/…
)

func routePublish(deviceID, topic string) publishRoute {
	if rest, ok := strings.CutPrefix(topic, "devices/"); ok {
		if rest, ok := strings.CutPrefix(rest, deviceID); ok {
			if rest == "/messages/events" || strings.HasPrefix(rest, "/messages/events/") {
				return routeTelemetry
			}
		}
		return routeForbidden
	}
	switch {
	case strings.HasPrefix(topic, "$iothub/twin/GET/"):
		return routeTwinGet
	case strings.HasPrefix(topic, "$iothub/twin/PATCH/properties/reported/"):
		return routeTwinReported
	case strings.HasPrefix(topic, "$iothub/methods/res/"):
		return routeMethodResponse
	}
	return routeForbidden
}

// subscription is what a granted topic filter subscribes the device to.
type subscription uint8

const (
	subC2D          subscription = 1 << iota // devices/{id}/messages/devicebound/#
	subMethods                               // $iothub/methods/POST/#
	subTwinResponse                          // $iothub/twin/res/#
	subTwinDesired                           // $iothub/twin/PATCH/properties/desired/#
)

// routeSubscribe maps a topic filter to what it subscribes to; 0 means
// the device may not subscribe to it.
func routeSubscribe(deviceID, filter string) subscription {
	switch filter {
	case "$iothub/methods/POST/#":
		return subMethods
	case "$iothub/twin/res/#":
		return subTwinResponse
	case "$iothub/twin/PATCH/properties/desired/#":
		return subTwinDesired
	}
	c2d := "devices/" + deviceID + "/messages/devicebound/"
	if filter == c2d+"#" || filter == "devices/"+deviceID+"/messages/devicebound" ||
		strings.HasPrefix(filter, c2d) && !strings.ContainsAny(filter, "#+") {
		return subC2D
	}
	return 0
}

// topicParam returns the value of key in a topic's query part (after the
// last "?"), e.g. $rid in $iothub/twin/GET/?$rid=7; ok is false when the
// topic has no such parameter. IoT Hub's request ids are plain tokens, so
// no percent-decoding is needed.
func topicParam(topic, key string) (string, bool) {
	i := strings.LastIndexByte(topic, '?')
	if i < 0 {
		return "", false
	}
	for q := topic[i+1:]; q != ""; {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k == key {
			return v, true
		}
	}
	return "", false
}
