package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// answerMethods is the test device's method handler: echo answers 200
// with the payload, fail answers 500, text answers a non-JSON body,
// silent never answers.
func answerMethods(name string, payload []byte) (int, string, bool) {
	switch name {
	case "echo":
		return 200, string(payload), true
	case "fail":
		return 500, `{"error":"sensor stuck"}`, true
	case "text":
		return 201, "done", true
	}
	return 0, "", false
}

func wantExit(t *testing.T, err error, code int, msg ...string) {
	t.Helper()
	var ee exitError
	got := 1
	if errors.As(err, &ee) {
		got = int(ee)
	}
	if err == nil || got != code {
		t.Errorf("exit status %d (%v), want %d", got, err, code)
		return
	}
	for _, m := range msg {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q lacks %q", err, m)
		}
	}
	if strings.Contains(err.Error(), "exit status") {
		t.Errorf("the message names the exit status: %q", err)
	}
}

func TestInvokeCLI(t *testing.T) {
	h := startTwinHub(t)
	key := h.create("pump")
	dev := h.connectDevice("pump", key, answerMethods)

	// Table: status line and the payload indented.
	out := h.mustRun(t, "device", "invoke", "pump", "echo", "--payload", `{"speed":3,"dir":"in"}`)
	if out != "status 200\n{\n  \"speed\": 3,\n  \"dir\": \"in\"\n}\n" {
		t.Errorf("table:\n%q", out)
	}
	// JSON: the hub's answer; payload from a file; no payload is null.
	out = h.mustRun(t, "device", "invoke", "pump", "echo", "-o", "json")
	var res struct {
		Status  int             `json:"status"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Status != 200 || string(res.Payload) != "null" {
		t.Errorf("json: %v %s", err, out)
	}
	out, _, err := h.runIn(`[1, 2]`, "device", "invoke", "pump", "echo", "--payload", "@-", "--timeout", "10s")
	if err != nil || out != "status 200\n[\n  1,\n  2\n]\n" {
		t.Errorf("payload from stdin: %v %q", err, out)
	}
	// A non-JSON answer reaches the caller as a JSON string.
	if out = h.mustRun(t, "device", "invoke", "pump", "text"); out != "status 201\n\"done\"\n" {
		t.Errorf("text answer: %q", out)
	}

	// The device answers 500: the answer is printed, exit status 2.
	out, err = h.run(t, "device", "invoke", "pump", "fail")
	wantExit(t, err, exitMethodError, "device pump answered method fail with status 500")
	if out != "status 500\n{\n  \"error\": \"sensor stuck\"\n}\n" {
		t.Errorf("failed method output: %q", out)
	}

	// No answer within --timeout: 504101, exit status 4.
	start := time.Now()
	_, err = h.run(t, "device", "invoke", "pump", "silent", "--timeout", "5s")
	wantExit(t, err, exitMethodTimeout, "device pump did not answer method silent within 5s", "504", "GatewayTimeout", "raise --timeout")
	if d := time.Since(start); d < 5*time.Second {
		t.Errorf("timed out after %s, before --timeout", d)
	}

	// Registered but offline: 404103, exit status 3, says what to do.
	offKey := h.create("valve")
	_, err = h.run(t, "device", "invoke", "valve", "echo")
	wantExit(t, err, exitDeviceOffline, "device valve is not online", "404103", "$iothub/methods/POST/#", "--connect-timeout")

	// --connect-timeout waits for the device to come online.
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, _, err := h.runIn("", "device", "invoke", "valve", "echo", "--payload", `"open"`, "--connect-timeout", "20s")
		done <- result{out, err}
	}()
	select { // the hub waits instead of answering 404103 at once
	case r := <-done:
		t.Fatalf("invoke returned before the device connected: %v %q", r.err, r.out)
	case <-time.After(500 * time.Millisecond):
	}
	h.connectDevice("valve", offKey, answerMethods)
	select {
	case r := <-done:
		if r.err != nil || r.out != "status 200\n\"open\"\n" {
			t.Errorf("after connecting: %v %q", r.err, r.out)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("invoke with --connect-timeout did not return")
	}

	// Not registered, or a name the hub refuses: a plain error, exit status 1.
	_, err = h.run(t, "device", "invoke", "ghost", "echo")
	wantExit(t, err, 1, "404", "DeviceNotFound")
	_, err = h.run(t, "device", "invoke", "pump", "a/b")
	wantExit(t, err, 1, "400", `methodName "a/b" may not contain`)

	dev.mu.Lock()
	calls := strings.Join(dev.methods, ",")
	dev.mu.Unlock()
	if calls != "echo,echo,echo,text,fail,silent" {
		t.Errorf("methods the device got: %s", calls)
	}
}

func TestInvokeArgumentErrors(t *testing.T) {
	h := startCLIHub(t)
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"device", "invoke", "d1"}, "takes the device id and the method name (got 1 arguments)"},
		{[]string{"device", "invoke", "d1", "m", "--timeout", "1s"}, "--timeout 1s: IoT Hub allows 5s to 5m0s"},
		{[]string{"device", "invoke", "d1", "m", "--timeout", "301s"}, "--timeout 5m1s"},
		{[]string{"device", "invoke", "d1", "m", "--connect-timeout", "-1s"}, "--connect-timeout -1s: IoT Hub allows 0s to 5m0s"},
		{[]string{"device", "invoke", "d1", "m", "--payload", "{"}, "--payload: not valid JSON at line 1, column 2: unexpected end of JSON input"},
		{[]string{"device", "invoke", "d1", "m", "--payload", "hello"}, "--payload: not valid JSON at line 1, column 1: invalid character 'h'"},
	} {
		_, err := h.run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("tether %q: error %v, want %q", tc.args, err, tc.msg)
		}
	}
}
