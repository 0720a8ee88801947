package probe

import (
	"fmt"
	"strings"
)

// conclude sums a finished report up in a sentence or two: which ways to
// the hub work, and the first thing to fix.
func conclude(r *Report) string {
	step := func(n int) *Step { return r.Step(n, "") }
	ok := func(s *Step) bool { return s != nil && (s.Status == Pass || s.Status == Warn) }
	mqtt, ws := step(StepMQTT), step(StepWebSocket)
	var out []string
	if r.Interrupted {
		out = append(out, "interrupted before the end")
	}
	if len(r.Failed) == 0 {
		switch {
		case r.Interrupted:
		case r.Status == Warn:
			out = append(out, "the device can connect; warnings above deserve attention")
		default:
			out = append(out, fmt.Sprintf("the device can reach the hub and connect over MQTT/TLS (port %d) and MQTT over WebSockets (port %d)", r.MQTTPort, r.HTTPSPort))
		}
		return strings.Join(out, "; ")
	}
	first := r.Failed[0]
	fs := r.Step(first.Number, first.Target)
	out = append(out, fmt.Sprintf("first failure at %s: %s", first, fs.Summary))
	switch {
	case ok(mqtt) && ok(ws):
		out = append(out, "the device can still connect over both transports")
	case !ok(mqtt) && ok(ws):
		fix := fmt.Sprintf("open outbound TCP %d to the hub", r.MQTTPort)
		if b := r.blocker(mqtt); b != nil && b.Number != StepTCP {
			fix = "fix " + b.ref().String()
		}
		out = append(out, fmt.Sprintf("MQTT over TLS on port %d does not work from here, MQTT over WebSockets on port %d does: switch the device to the SDK's MQTT-over-WebSockets transport (e.g. MqttWs, MQTT_WebSocket_Only), or %s", r.MQTTPort, r.HTTPSPort, fix))
	case ok(mqtt) && !ok(ws):
		out = append(out, fmt.Sprintf("MQTT over TLS on port %d works; MQTT over WebSockets on port %d does not (a concern only for devices that use WebSockets)", r.MQTTPort, r.HTTPSPort))
	default:
		out = append(out, "the device cannot connect to the hub from here")
	}
	if c := step(StepClock); c != nil && c.Status == Fail && first.Number != StepClock {
		out = append(out, "the clock is off too (step 4)")
	}
	if k := step(StepKeepAlive); k != nil && k.Status == Fail && first.Number != StepKeepAlive && k.KeepAlive != nil && k.KeepAlive.SuggestedKeepAliveSeconds > 0 {
		out = append(out, fmt.Sprintf("idle connections die on this path: keep-alive at most %ds (step 7)", k.KeepAlive.SuggestedKeepAliveSeconds))
	}
	return strings.Join(out, "; ")
}

// blocker is the failed step that kept s from passing: s itself, or the
// first failed step on its port.
func (r *Report) blocker(s *Step) *Step {
	if s == nil || s.Status == Fail {
		return s
	}
	for i := range r.Steps {
		if c := &r.Steps[i]; c.Status == Fail && c.Target == s.Target {
			return c
		}
	}
	return nil
}
