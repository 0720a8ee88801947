package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/hubclient"
)

func testReceiver(t *testing.T, devices int) *receiver {
	t.Helper()
	r, err := startReceiver(devices)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	return r
}

// connEvent is one event as the hub sends it (the fields the comparator
// reads, among others it skips).
func connEvent(typ string, dev, seq int, reason string) string {
	return fmt.Sprintf(`{"id":"x","topic":"/t","subject":"devices/lat-%d","eventType":%q,"eventTime":"2026-12-07T15:00:00.5Z",`+
		`"data":{"deviceConnectionStateEventInfo":{"sequenceNumber":"%064x"},"hubName":"h","deviceId":"lat-%d","moduleId":"",`+
		`"tether":{"reason":%q,"protocol":"MQTT","protocolVersion":4}},"dataVersion":"1","metadataVersion":"1"}`,
		dev, typ, seq, dev, reason)
}

func batchOf(events ...string) string { return "[" + strings.Join(events, ",") + "]" }

// rawConn is a client connection to the receiver that writes requests by
// hand and reads answers with net/http's parser.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, r *receiver) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(strings.TrimSuffix(r.url, hookPath), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(time.Minute)) // a hung server fails the test, not the suite
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// do writes req and reads one answer; it returns the status, the body and
// whether the server said it closes.
func (rc *rawConn) do(req string) (int, string, bool) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, req); err != nil {
		rc.t.Fatal(err)
	}
	return rc.read()
}

func (rc *rawConn) read() (int, string, bool) {
	rc.t.Helper()
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		rc.t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		rc.t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Close
}

// closed says whether the server closed the connection (EOF with nothing
// more to read).
func (rc *rawConn) closed() bool {
	_, err := rc.br.ReadByte()
	return err == io.EOF
}

func post(body string, headers ...string) string {
	return "POST /hook HTTP/1.1\r\nHost: x\r\naeg-event-type: Notification\r\n" + strings.Join(headers, "") +
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
}

func chunked(body string, sizes ...int) string {
	var b strings.Builder
	b.WriteString("POST /hook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	for _, n := range sizes {
		n = min(n, len(body))
		fmt.Fprintf(&b, "%x;ext=1\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	if body != "" {
		fmt.Fprintf(&b, "%X\r\n%s\r\n", len(body), body)
	}
	b.WriteString("0\r\nX-Trailer: yes\r\n\r\n")
	return b.String()
}

type counts struct{ conn, disc, posts, reordered, bad, unknown, notClient int }

func (r *receiver) counts() counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	return counts{r.connTotal, r.discTotal, r.posts, r.reordered, r.bad, r.unknown, r.notClient}
}

// Requests with Content-Length and chunked bodies follow each other on one
// kept-alive connection, and each event is counted by device and type.
func TestReceiverKeepAliveContentLengthAndChunked(t *testing.T) {
	r := testReceiver(t, 10)
	c := dialRaw(t, r)
	for i, req := range []string{
		post(batchOf(connEvent(hubclient.DeviceConnected, 1, 1, ""), connEvent(hubclient.DeviceConnected, 2, 1, ""))),
		chunked(batchOf(connEvent(hubclient.DeviceDisconnected, 1, 2, "client")), 1, 7, 100),
		"\r\n" + post(batchOf(connEvent(hubclient.DeviceConnected, 1, 3, "")), "Connection: keep-alive\r\n"),
	} {
		if code, body, closing := c.do(req); code != http.StatusOK || closing || body != "" {
			t.Fatalf("request %d: %d %q close=%v", i, code, body, closing)
		}
	}
	if got, want := r.counts(), (counts{conn: 3, disc: 1, posts: 3}); got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
	r.mu.Lock()
	d1, c1 := r.disc[1], r.conn[1]
	r.mu.Unlock()
	if len(d1) != 1 || len(c1) != 2 || !d1[0].eventTime.Equal(time.Date(2026, 12, 7, 15, 0, 0, 5e8, time.UTC)) || d1[0].at.IsZero() {
		t.Fatalf("device 1: disconnects %+v, connects %+v", d1, c1)
	}
}

// A body that is not a batch is answered 400 and counted, and the
// connection goes on (its framing was sound); events out of their device's
// order, delivered twice, of no device of the fleet or not from a client
// DISCONNECT are counted apart.
func TestReceiverCountsBadBodiesAndOrder(t *testing.T) {
	r := testReceiver(t, 10)
	c := dialRaw(t, r)
	for _, body := range []string{`[{"eventType":`, `not json`, `[]`, `{"eventType":"x"}`, `[{"eventType":5}]`} {
		if code, _, closing := c.do(post(body)); code != http.StatusBadRequest || closing {
			t.Fatalf("%q: %d close=%v, want 400 and the connection kept", body, code, closing)
		}
	}
	steps := []string{
		connEvent(hubclient.DeviceConnected, 3, 5, ""),
		connEvent(hubclient.DeviceDisconnected, 3, 4, "client"),  // before the one delivered
		connEvent(hubclient.DeviceDisconnected, 3, 6, "client"),  // in order
		connEvent(hubclient.DeviceDisconnected, 3, 6, "client"),  // twice
		connEvent(hubclient.DeviceDisconnected, 4, 1, "timeout"), // not the driver's close
		connEvent(hubclient.DeviceConnected, 10, 1, ""),          // lat-10: not in a fleet of 10
		strings.Replace(connEvent(hubclient.DeviceConnected, 5, 1, ""), `"lat-5"`, `"other-5"`, 1),
		connEvent("Microsoft.Devices.DeviceCreated", 6, 1, ""),
	}
	if code, _, _ := c.do(post(batchOf(steps...))); code != http.StatusOK {
		t.Fatalf("batch: %d", code)
	}
	want := counts{conn: 1, disc: 3, posts: 1, reordered: 2, bad: 5, unknown: 3, notClient: 1}
	if got := r.counts(); got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
	if bad, unknown := r.refused(); bad != 5 || unknown != 3 {
		t.Fatalf("refused() = %d, %d", bad, unknown)
	}
}

// Requests the server cannot frame are refused with the right status and
// the connection closed; the server keeps serving new connections.
func TestReceiverRefusesWhatItCannotFrame(t *testing.T) {
	r := testReceiver(t, 10)
	ok := post(batchOf(connEvent(hubclient.DeviceConnected, 1, 1, "")))
	for _, tc := range []struct {
		req  string
		want int
	}{
		{"POST /hook HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", http.StatusBadRequest},
		{"POST /hook HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]xx0\r\n\r\n", http.StatusBadRequest},
		{"POST /hook HTTP/1.1\r\nContent-Length: -1\r\n\r\n", http.StatusBadRequest},
		{"POST /hook HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n[]", http.StatusBadRequest},
		{"POST /hook HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n[]", http.StatusBadRequest},
		{"POST /hook HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", http.StatusNotImplemented},
		{"POST /hook HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", http.StatusRequestEntityTooLarge},
		{"POST /hook HTTP/1.1\r\nExpect: magic\r\nContent-Length: 2\r\n\r\n[]", http.StatusExpectationFailed},
		{"POST /hook HTTP/1.1\r\nbad header\r\n\r\n", http.StatusBadRequest},
		{"POST /hook HTTP/1.1\r\n folded: x\r\n\r\n", http.StatusBadRequest},
		{"POST /hook HTTP/2.0\r\n\r\n", http.StatusHTTPVersionNotSupported},
		{"POST /hook\r\n\r\n", http.StatusBadRequest},
		{"GET /hook HTTP/1.1\r\n\r\n", http.StatusMethodNotAllowed},
		{"POST /other HTTP/1.1\r\nContent-Length: 0\r\n\r\n", http.StatusNotFound},
		{"POST /hook HTTP/1.1\r\nX: " + strings.Repeat("a", maxHookLine) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
	} {
		c := dialRaw(t, r)
		code, _, closing := c.do(tc.req)
		if code != tc.want || !closing || !c.closed() {
			t.Errorf("%.50q: %d close=%v, want %d and the connection closed", tc.req, code, closing, tc.want)
		}
	}
	// A request cut off mid-body is dropped without an answer.
	c := dialRaw(t, r)
	_, _ = io.WriteString(c.c, "POST /hook HTTP/1.1\r\nContent-Length: 10\r\n\r\n[")
	_ = c.c.(*net.TCPConn).CloseWrite()
	if !c.closed() {
		t.Error("a truncated request got an answer")
	}
	if code, _, _ := dialRaw(t, r).do(ok); code != http.StatusOK {
		t.Fatalf("after the refusals: %d", code)
	}
	if got := r.counts(); got.bad != 15 || got.posts != 1 {
		t.Fatalf("counts %+v, want 15 refused, 1 batch", got)
	}
}

// HTTP/1.0 closes after the answer unless it asks for keep-alive;
// "Connection: close" closes; Expect: 100-continue gets its interim answer.
func TestReceiverConnectionHandling(t *testing.T) {
	r := testReceiver(t, 10)
	body := batchOf(connEvent(hubclient.DeviceConnected, 1, 1, ""))
	req10 := strings.Replace(post(body), "HTTP/1.1", "HTTP/1.0", 1)

	c := dialRaw(t, r)
	if code, _, closing := c.do(req10); code != http.StatusOK || !closing || !c.closed() {
		t.Fatalf("HTTP/1.0: %d close=%v", code, closing)
	}
	c = dialRaw(t, r)
	for range 2 {
		if code, _, closing := c.do(strings.Replace(req10, "Host: x\r\n", "Host: x\r\nConnection: Keep-Alive\r\n", 1)); code != http.StatusOK || closing {
			t.Fatalf("HTTP/1.0 keep-alive: %d close=%v", code, closing)
		}
	}
	c = dialRaw(t, r)
	if code, _, closing := c.do(post(body, "Connection: close\r\n")); code != http.StatusOK || !closing || !c.closed() {
		t.Fatalf("Connection: close: %d close=%v", code, closing)
	}
	c = dialRaw(t, r)
	head, b, _ := strings.Cut(post(body, "Expect: 100-continue\r\n"), "\r\n\r\n")
	_, _ = io.WriteString(c.c, head+"\r\n\r\n")
	if code, _, _ := c.read(); code != http.StatusContinue {
		t.Fatalf("Expect: 100-continue: %d first", code)
	}
	_, _ = io.WriteString(c.c, b)
	if code, _, _ := c.read(); code != http.StatusOK {
		t.Fatalf("after 100 Continue: %d", code)
	}
}

// net/http's client (the same protocol the hub's webhook sender speaks)
// gets the validation handshake answered and reuses its connection.
func TestReceiverWithNetHTTPClient(t *testing.T) {
	r := testReceiver(t, 10)
	client := &http.Client{Timeout: time.Minute}
	var reused []bool
	send := func(kind, body string) (int, []byte) {
		t.Helper()
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) }})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("aeg-event-type", kind)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	code, b := send("SubscriptionValidation", `[{"id":"v","eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","data":{"validationCode":"c0de\"1","validationUrl":"u"}}]`)
	var v struct{ ValidationResponse string }
	if code != http.StatusOK || json.Unmarshal(b, &v) != nil || v.ValidationResponse != `c0de"1` {
		t.Fatalf("validation: %d %s", code, b)
	}
	if code, _ := send("Notification", batchOf(connEvent(hubclient.DeviceConnected, 2, 1, ""))); code != http.StatusOK {
		t.Fatalf("notification: %d", code)
	}
	// A chunked body: net/http chunks a body of unknown length.
	req, _ := http.NewRequest(http.MethodPost, r.url, io.MultiReader(strings.NewReader(batchOf(connEvent(hubclient.DeviceConnected, 2, 2, ""))[:20]),
		bytes.NewReader([]byte(batchOf(connEvent(hubclient.DeviceConnected, 2, 2, ""))[20:]))))
	req.Header.Set("aeg-event-type", "Notification")
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK || len(resp.TransferEncoding) != 0 {
		t.Fatalf("chunked: %v %+v", err, resp)
	}
	resp.Body.Close()
	if got := r.counts(); got.conn != 2 || got.posts != 2 || r.validated != 1 {
		t.Fatalf("counts %+v, validated %d", got, r.validated)
	}
	if len(reused) != 2 || !reused[1] {
		t.Fatalf("connection reuse %v, want the second request on the first's connection", reused)
	}
}
