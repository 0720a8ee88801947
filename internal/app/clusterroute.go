package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/broker"
)

// Cross-node routing: a direct method, a cloud-to-device message or a
// desired-properties push sent through one node's API for a device live on
// another node goes to that node (tether_owners says which, from the
// node's own view of the bucket: cluster.Node.OwnerOf) as a NATS request on
// tether.cluster.route.<node>; that node runs it on its broker and
// answers. A device held by nobody is this node's to handle (a method
// waits for it to connect here, a C2D message is queued here).

// routeSubject is where a node takes the calls the others route to it.
func routeSubject(node string) string { return "tether.cluster.route." + node }

// routedCall is one call routed to the node that holds its device.
type routedCall struct {
	Kind   string `json:"kind"` // method, c2d, desired
	Device string `json:"device"`
	// method
	Name            string        `json:"name,omitempty"`
	ResponseTimeout time.Duration `json:"responseTimeout,omitempty"`
	ConnectTimeout  time.Duration `json:"connectTimeout,omitempty"`
	// method, c2d, desired
	Payload []byte `json:"payload,omitempty"`
	// c2d
	Props     map[string]string `json:"props,omitempty"`
	MessageID string            `json:"messageId,omitempty"`
	// desired
	Version int64 `json:"version,omitempty"`
}

// routedAnswer is the holding node's answer: the method's result, or the
// error as one of the broker's (Code) with its text.
type routedAnswer struct {
	Status  int    `json:"status,omitempty"`
	Payload []byte `json:"payload,omitempty"`
	Code    string `json:"code,omitempty"`
	Error   string `json:"error,omitempty"`
	Pushed  bool   `json:"pushed,omitempty"`
}

// routedErrors are the broker errors an answer carries by code.
var routedErrors = map[string]error{
	"not-online":     broker.ErrDeviceNotOnline,
	"timeout":        broker.ErrMethodTimeout,
	"throttled":      broker.ErrMethodThrottled,
	"unknown-device": broker.ErrUnknownDevice,
	"queue-full":     broker.ErrQueueFull,
}

func answerError(err error) routedAnswer {
	for code, e := range routedErrors {
		if errors.Is(err, e) {
			return routedAnswer{Code: code, Error: err.Error()}
		}
	}
	return routedAnswer{Error: err.Error()}
}

func (r routedAnswer) err() error {
	if r.Code == "" && r.Error == "" {
		return nil
	}
	if e := routedErrors[r.Code]; e != nil {
		return fmt.Errorf("%w (on the node that holds the device: %s)", e, r.Error)
	}
	return errors.New(r.Error)
}

// remoteOwner is the other node that holds deviceID ("" when this node
// does, nobody does, or the hub is alone).
func (a *App) remoteOwner(deviceID string) string {
	n := a.cluster
	if n == nil {
		return ""
	}
	if o := n.OwnerOf(deviceID); o != n.Name() {
		return o
	}
	return ""
}

// serveRoutes answers the calls other nodes route to this one. Each runs
// on its own goroutine: a method call waits for the device's answer.
func (a *App) serveRoutes() error {
	sub, err := a.journal.NC.Subscribe(routeSubject(a.cfg.Cluster.NodeName), func(m *nats.Msg) {
		go func() {
			var c routedCall
			ans := routedAnswer{}
			if err := json.Unmarshal(m.Data, &c); err != nil {
				ans = routedAnswer{Error: "cluster route: " + err.Error()}
			} else {
				ans = a.runRouted(c)
			}
			b, _ := json.Marshal(ans)
			_ = m.Respond(b)
		}()
	})
	if err != nil {
		return fmt.Errorf("cluster: route subject: %w", err)
	}
	a.onStop(func(context.Context) error { return sub.Unsubscribe() })
	return nil
}

// runRouted runs a routed call on this node's broker.
func (a *App) runRouted(c routedCall) routedAnswer {
	b := a.broker
	if b == nil {
		return answerError(broker.ErrDeviceNotOnline)
	}
	switch c.Kind {
	case "method":
		ctx, cancel := context.WithTimeout(context.Background(), c.ConnectTimeout+c.ResponseTimeout+5*time.Second)
		defer cancel()
		res, err := b.InvokeMethod(ctx, c.Device, broker.MethodCall{Name: c.Name, Payload: c.Payload,
			ResponseTimeout: c.ResponseTimeout, ConnectTimeout: c.ConnectTimeout})
		if err != nil {
			return answerError(err)
		}
		return routedAnswer{Status: res.Status, Payload: res.Payload}
	case "c2d":
		if err := b.SendC2D(context.Background(), c.Device, c.Payload, c.Props, c.MessageID); err != nil {
			return answerError(err)
		}
		return routedAnswer{}
	case "desired":
		return routedAnswer{Pushed: b.PushDesired(c.Device, c.Version, c.Payload)}
	}
	return routedAnswer{Error: fmt.Sprintf("cluster route: unknown kind %q", c.Kind)}
}

// route sends c to node and waits for its answer within wait. ok is false
// when nobody serves that node's subject (it is gone: the caller handles
// the call here).
func (a *App) route(ctx context.Context, node string, c routedCall, wait time.Duration) (ans routedAnswer, ok bool, err error) {
	b, err := json.Marshal(c)
	if err != nil {
		return routedAnswer{}, true, err
	}
	rctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	msg, err := a.journal.NC.RequestWithContext(rctx, routeSubject(node), b)
	if errors.Is(err, nats.ErrNoResponders) {
		return routedAnswer{}, false, nil
	}
	if err != nil {
		return routedAnswer{}, true, fmt.Errorf("cluster: routing a %s for %s to node %s: %w", c.Kind, c.Device, node, err)
	}
	if err := json.Unmarshal(msg.Data, &ans); err != nil {
		return routedAnswer{}, true, fmt.Errorf("cluster: node %s's answer: %w", node, err)
	}
	return ans, true, nil
}

// invokeMethod calls a direct method where the device is live.
func (a *App) invokeMethod(ctx context.Context, deviceID string, call broker.MethodCall) (broker.MethodResult, error) {
	if node := a.remoteOwner(deviceID); node != "" {
		ans, ok, err := a.route(ctx, node, routedCall{Kind: "method", Device: deviceID, Name: call.Name, Payload: call.Payload,
			ResponseTimeout: call.ResponseTimeout, ConnectTimeout: call.ConnectTimeout},
			call.ConnectTimeout+call.ResponseTimeout+5*time.Second)
		if err != nil {
			return broker.MethodResult{}, err
		}
		if ok {
			return broker.MethodResult{Status: ans.Status, Payload: ans.Payload}, ans.err()
		}
	}
	return a.broker.InvokeMethod(ctx, deviceID, call)
}

// sendC2D queues a cloud-to-device message on the node the device is
// live on (here when it is live nowhere).
func (a *App) sendC2D(ctx context.Context, deviceID string, payload []byte, props map[string]string, messageID string) error {
	if node := a.remoteOwner(deviceID); node != "" {
		ans, ok, err := a.route(ctx, node, routedCall{Kind: "c2d", Device: deviceID, Payload: payload, Props: props, MessageID: messageID}, 10*time.Second)
		if err != nil {
			return err
		}
		if ok {
			return ans.err()
		}
	}
	return a.broker.SendC2D(ctx, deviceID, payload, props, messageID)
}

// pushDesiredAnywhere pushes a desired-properties change to the device
// where it is live: here, or on the node that holds it. Not queued (IoT
// Hub does not either: a device that was away reads its twin).
func (a *App) pushDesiredAnywhere(deviceID string, version int64, patch []byte) {
	if a.broker.PushDesired(deviceID, version, patch) {
		return
	}
	node := a.remoteOwner(deviceID)
	if node == "" {
		return
	}
	go func() {
		ans, ok, err := a.route(context.Background(), node, routedCall{Kind: "desired", Device: deviceID, Payload: patch, Version: version}, 10*time.Second)
		if err != nil || !ok || !ans.Pushed {
			a.log.Debug("desired push routed to another node not sent", "device", deviceID, "node", node, "ok", ok, "err", err)
		}
	}()
}
