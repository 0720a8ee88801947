package broker

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

func methodCall(name, payload string, connectWait time.Duration) MethodCall {
	return MethodCall{Name: name, Payload: []byte(payload), ResponseTimeout: 5 * time.Second, ConnectTimeout: connectWait}
}

// invokeAsync calls a method on a goroutine; the result arrives on the
// returned channel.
func (h *testHub) invokeAsync(device string, call MethodCall) <-chan methodOutcome {
	out := make(chan methodOutcome, 1)
	go func() {
		r, err := h.b.InvokeMethod(context.Background(), device, call)
		out <- methodOutcome{r, err}
	}()
	return out
}

type methodOutcome struct {
	r   MethodResult
	err error
}

// answerMethod reads the method request and answers it with status.
func (c *client) answerMethod(wantName, wantPayload string, status int, payload string) {
	c.t.Helper()
	p := c.readPublish()
	prefix := "$iothub/methods/POST/" + wantName + "/?$rid="
	if !strings.HasPrefix(p.TopicName, prefix) || string(p.Payload) != wantPayload {
		c.t.Fatalf("method request %q %s", p.TopicName, p.Payload)
	}
	rid := strings.TrimPrefix(p.TopicName, prefix)
	c.send(publishPacket("$iothub/methods/res/"+strconv.Itoa(status)+"/?$rid="+rid, 0, 0, []byte(payload)))
}

func TestMethodRoundTrip(t *testing.T) {
	h := startTestHub(t)
	cl, _ := h.connect("d1", 4)
	cl.send(appendSubscribe(1, "$iothub/methods/POST/#"))
	cl.read()
	res := h.invokeAsync("d1", methodCall("reboot", `{"delay":1}`, 0))
	cl.answerMethod("reboot", `{"delay":1}`, 200, `{"ok":true}`)
	o := <-res
	if o.err != nil || o.r.Status != 200 || string(o.r.Payload) != `{"ok":true}` {
		t.Fatalf("result %+v %v", o.r, o.err)
	}
}

func TestMethodDeviceNotOnline(t *testing.T) {
	h := startTestHub(t)
	if _, err := h.b.InvokeMethod(context.Background(), "d1", methodCall("m", "{}", 0)); !errors.Is(err, ErrDeviceNotOnline) {
		t.Errorf("offline device: %v", err)
	}
	// Connected but not subscribed to methods counts as not online.
	h.connect("d1", 4)
	start := time.Now()
	if _, err := h.b.InvokeMethod(context.Background(), "d1", methodCall("m", "{}", 200*time.Millisecond)); !errors.Is(err, ErrDeviceNotOnline) {
		t.Errorf("device without a methods subscription: %v", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("gave up after %v, before the connect timeout", d)
	}
}

// A call made while the device is away waits up to its connect timeout
// and goes out once the device connects and subscribes.
func TestMethodWaitsForConnect(t *testing.T) {
	h := startTestHub(t)
	res := h.invokeAsync("d1", methodCall("m", `"x"`, 5*time.Second))
	time.Sleep(50 * time.Millisecond)
	cl, _ := h.connect("d1", 4)
	cl.send(appendSubscribe(1, "$iothub/methods/POST/#"))
	cl.answerMethod("m", `"x"`, 201, `null`)
	if o := <-res; o.err != nil || o.r.Status != 201 {
		t.Fatalf("result %+v %v", o.r, o.err)
	}
}

// An answer on the device's next connection (a SAS renewal mid-call)
// counts; another device cannot answer it; none in time is 504101.
func TestMethodAnswerAcrossRenewal(t *testing.T) {
	h := startTestHub(t)
	cl, _ := h.connect("d1", 4)
	cl.send(appendSubscribe(1, "$iothub/methods/POST/#"))
	cl.read()
	res := h.invokeAsync("d1", methodCall("m", `{}`, 0))
	p := cl.readPublish()
	rid := p.TopicName[strings.Index(p.TopicName, "$rid=")+5:]
	cl.send(disconnectV3)
	cl.waitClosed()

	other, _ := h.connect("d2", 4)
	other.send(publishPacket("$iothub/methods/res/200/?$rid="+rid, 0, 0, []byte(`"not mine"`)))
	cl, _ = h.connect("d1", 4)
	cl.send(publishPacket("$iothub/methods/res/200/?$rid="+rid, 1, 3, []byte(`"mine"`)))
	if p := cl.read(); p.FixedHeader.Type != packets.Puback {
		t.Errorf("answer at QoS 1 not acknowledged: %v", p.FixedHeader)
	}
	if o := <-res; o.err != nil || string(o.r.Payload) != `"mine"` {
		t.Fatalf("result %+v %v", o.r, o.err)
	}

	call := methodCall("m", `{}`, 0)
	call.ResponseTimeout = 100 * time.Millisecond
	if _, err := h.b.InvokeMethod(context.Background(), "d1", call); !errors.Is(err, ErrMethodTimeout) {
		t.Errorf("unanswered call: %v", err)
	}
}

func TestMethodsInFlightPerDevice(t *testing.T) {
	h := startTestHub(t)
	cl, _ := h.connect("d1", 4)
	cl.send(appendSubscribe(1, "$iothub/methods/POST/#"))
	cl.read()
	var waits []<-chan methodOutcome
	call := methodCall("m", `{}`, 0)
	call.ResponseTimeout = time.Second
	for range MethodsPerDevice {
		waits = append(waits, h.invokeAsync("d1", call))
	}
	for range MethodsPerDevice {
		cl.readPublish() // all sent: the slots are taken
	}
	if _, err := h.b.InvokeMethod(context.Background(), "d1", methodCall("m", `{}`, 0)); !errors.Is(err, ErrMethodThrottled) {
		t.Errorf("call over the per-device limit: %v", err)
	}
	cl.send(disconnectV3) // the rest time out
	for _, w := range waits {
		if o := <-w; !errors.Is(o.err, ErrMethodTimeout) {
			t.Errorf("pending call: %v", o.err)
		}
	}
}
