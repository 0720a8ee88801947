package app_test

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/presence"
)

// refusals returns the refused events without a device.
func (h *hub) anonymousRefusals() []presence.ConnectionEvent { return h.events.forDevice("") }

// Garbage, oversized and silent connections each get closed with a log
// record, and a connected device notices nothing.
func TestBadInputNeverHurtsTheHub(t *testing.T) {
	h := startHub(t)
	key := h.device("bystander")
	by, rc := h.v3("bystander", username("bystander"), h.token("bystander", key, time.Hour))
	if rc != 0 {
		t.Fatalf("CONNACK %d", rc)
	}
	send := func(b []byte) {
		c, err := net.Dial("tcp", h.TCPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write(b)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		for {
			if _, err := c.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Errorf("hub kept a connection after % x…", b[:min(len(b), 8)])
				}
				return
			}
		}
	}
	send([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))                    // not MQTT
	send([]byte{0x10, 0xff, 0xff, 0xff, 0x7f, 0, 4, 'M', 'Q', 'T', 'T'}) // CONNECT claiming 256 MiB
	send([]byte{0x30, 0x02, 0, 0})                                       // PUBLISH before CONNECT

	// Silent TCP and half-open TLS: closed at the connect timeout (2 s here).
	silent, err := net.Dial("tcp", h.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	halfTLS, err := net.Dial("tcp", h.MQTTAddr())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []net.Conn{silent, halfTLS} {
		_ = c.SetReadDeadline(time.Now().Add(6 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Errorf("silent connection not closed by the hub: %v", err)
		}
		c.Close()
	}
	var evs []presence.ConnectionEvent
	eventually(t, 10*time.Second, func() error {
		evs = h.anonymousRefusals()
		if len(evs) < 5 {
			return errorf("%d anonymous refusals, want 5: %s", len(evs), describe(evs))
		}
		return nil
	})
	var bad, timeouts int
	for _, ev := range evs {
		switch {
		case ev.Reason == presence.ReasonProtocolError && ev.Result.Type == "400000":
			bad++
		case ev.Reason == presence.ReasonConnectTimeout && ev.Result.Type == "500008":
			timeouts++
		default:
			t.Errorf("unexpected refusal %s %s %s", ev.Reason, ev.Result.Type, ev.Detail)
		}
		if ev.MaskedIP != "127.0.0.XXX" || ev.Detail == "" {
			t.Errorf("refusal without ip or detail: %+v", ev)
		}
	}
	if bad != 3 || timeouts != 2 {
		t.Errorf("got %d protocol errors and %d timeouts, want 3 and 2: %s", bad, timeouts, describe(evs))
	}
	if !by.IsConnectionOpen() {
		t.Fatal("the bystander was disconnected")
	}
	if tok := by.Publish("devices/bystander/messages/events/", 1, false, "still here"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("bystander cannot publish: %v", tok.Error())
	}
}

// Thousands of failed authentications: each refused and recorded, the hub
// keeps serving.
func TestManyFailedAuths(t *testing.T) {
	h := startHub(t)
	key := h.device("victim")
	const n = 2000
	bad := "SharedAccessSignature sr=localhost%2Fdevices%2Fvictim&sig=AAAA&se=9999999999"
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var mu sync.Mutex
	codes := map[byte]int{}
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialRaw(h.TCPAddr(), nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			rc, err := c.connect("victim", username("victim"), bad, 60)
			mu.Lock()
			if err != nil {
				codes[0xff]++
			} else {
				codes[rc]++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[5] != n {
		t.Fatalf("CONNACK codes %v, want %d × 5", codes, n)
	}
	recs := h.waitLogs("victim", n)
	for _, r := range recs {
		if r.ResultType != "401003" || !strings.Contains(r.Properties, "signature") {
			t.Fatalf("record %s %s", r.ResultType, r.Properties)
		}
	}
	if c, rc := h.v3("victim", username("victim"), h.token("victim", key, time.Hour)); rc != 0 || c == nil {
		t.Fatalf("the real device is refused after the flood: %d", rc)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
