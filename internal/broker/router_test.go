package broker

import "testing"

func TestRoutePublish(t *testing.T) {
	cases := []struct {
		topic string
		want  publishRoute
	}{
		{"devices/d1/messages/events/", routeTelemetry},
		{"devices/d1/messages/events", routeTelemetry},
		{"devices/d1/messages/events/a=b&%24.mid=1", routeTelemetry},
		{"devices/d1x/messages/events/", routeForbidden},
		{"devices/d2/messages/events/", routeForbidden},
		{"devices/d1/messages/devicebound/", routeForbidden},
		{"devices/d1/messages/eventsX", routeForbidden},
		{"$iothub/twin/GET/?$rid=1", routeTwinGet},
		{"$iothub/twin/PATCH/properties/reported/?$rid=2", routeTwinReported},
		{"$iothub/methods/res/200/?$rid=3", routeMethodResponse},
		{"$iothub/twin/PATCH/properties/desired/", routeForbidden},
		{"$SYS/x", routeForbidden},
		{"", routeForbidden},
	}
	for _, c := range cases {
		if got := routePublish("d1", c.topic); got != c.want {
			t.Errorf("routePublish(%q) = %d, want %d", c.topic, got, c.want)
		}
	}
}

func TestRouteSubscribe(t *testing.T) {
	cases := []struct {
		filter string
		want   subscription
	}{
		{"devices/d1/messages/devicebound/#", subC2D},
		{"devices/d1/messages/devicebound/%24.mid=1", subC2D},
		{"devices/d1/messages/devicebound/+", 0},
		{"devices/d2/messages/devicebound/#", 0},
		{"devices/+/messages/devicebound/#", 0},
		{"$iothub/methods/POST/#", subMethods},
		{"$iothub/twin/res/#", subTwinResponse},
		{"$iothub/twin/PATCH/properties/desired/#", subTwinDesired},
		{"#", 0},
		{"$SYS/#", 0},
	}
	for _, c := range cases {
		if got := routeSubscribe("d1", c.filter); got != c.want {
			t.Errorf("routeSubscribe(%q) = %d, want %d", c.filter, got, c.want)
		}
	}
}

func TestTopicParam(t *testing.T) {
	cases := []struct {
		topic, key, want string
		ok               bool
	}{
		{"$iothub/twin/GET/?$rid=7", "$rid", "7", true},
		{"$iothub/methods/res/200/?$rid=a1&x=2", "$rid", "a1", true},
		{"$iothub/methods/res/200/?x=2&$rid=", "$rid", "", true},
		{"$iothub/twin/GET/", "$rid", "", false},
		{"$iothub/twin/GET/?$ridx=1", "$rid", "", false},
	}
	for _, c := range cases {
		if got, ok := topicParam(c.topic, c.key); got != c.want || ok != c.ok {
			t.Errorf("topicParam(%q, %q) = %q, %v; want %q, %v", c.topic, c.key, got, ok, c.want, c.ok)
		}
	}
}
