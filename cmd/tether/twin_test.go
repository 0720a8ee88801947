package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/sas"
)

// twinHub is a whole hub in-process and a CLI runner pointed at it.
type twinHub struct {
	*cliHub
	a *app.App
	t *testing.T
}

func startTwinHub(t *testing.T) *twinHub {
	t.Helper()
	a := startApp(t)
	return &twinHub{cliHub: &cliHub{flags: []string{"--data-dir", a.DataDir()}}, a: a, t: t}
}

// create registers a device and returns its primary key.
func (h *twinHub) create(id string) string {
	h.t.Helper()
	d, err := h.a.Registry().Create(context.Background(), registry.Device{DeviceID: id}, "test")
	if err != nil {
		h.t.Fatal(err)
	}
	return d.Authentication.SymmetricKey.PrimaryKey
}

// runIn runs the CLI with stdin and returns its standard output and error.
func (h *cliHub) runIn(stdin string, args ...string) (string, string, error) {
	var out, errOut syncBuffer
	root := newRootCmd()
	root.SetArgs(append(append([]string{}, h.flags...), args...))
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// methodAnswer is how a test device answers a method: status and
// payload, or answer=false to stay silent.
type methodAnswer func(name string, payload []byte) (status int, resp string, answer bool)

// testDevice is a device on paho over MQTT/TLS: it records desired
// property pushes and answers direct methods.
type testDevice struct {
	c       pahov3.Client
	answer  methodAnswer
	mu      sync.Mutex
	desired []string // topic + " " + payload
	methods []string // names called
}

// connectDevice connects id with its key and subscribes to desired
// properties and methods.
func (h *twinHub) connectDevice(id, key string, answer methodAnswer) *testDevice {
	h.t.Helper()
	pem, err := os.ReadFile(h.a.CAFile())
	if err != nil {
		h.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tok, err := sas.Sign(sas.DeviceResource("localhost", id), key, "", time.Now().Add(time.Hour))
	if err != nil {
		h.t.Fatal(err)
	}
	d := &testDevice{answer: answer}
	o := pahov3.NewClientOptions().AddBroker("ssl://" + h.a.MQTTAddr()).
		SetClientID(id).SetUsername("localhost/" + id + "/?api-version=2021-04-12").SetPassword(tok).
		SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: "localhost"}).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(false).SetProtocolVersion(4).
		SetDefaultPublishHandler(d.receive)
	d.c = pahov3.NewClient(o)
	if ct := d.c.Connect(); !ct.WaitTimeout(10*time.Second) || ct.Error() != nil {
		h.t.Fatalf("connect %s: %v", id, ct.Error())
	}
	h.t.Cleanup(func() { d.c.Disconnect(0) })
	for _, f := range []string{"$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/#", "$iothub/methods/POST/#"} {
		if st := d.c.Subscribe(f, 0, nil); !st.WaitTimeout(5*time.Second) || st.Error() != nil {
			h.t.Fatalf("subscribe %s: %v", f, st.Error())
		}
	}
	return d
}

func (d *testDevice) receive(_ pahov3.Client, m pahov3.Message) {
	topic := m.Topic()
	switch {
	case strings.HasPrefix(topic, "$iothub/twin/PATCH/properties/desired/"):
		d.mu.Lock()
		d.desired = append(d.desired, topic+" "+string(m.Payload()))
		d.mu.Unlock()
	case strings.HasPrefix(topic, "$iothub/methods/POST/"):
		name, query, _ := strings.Cut(strings.TrimPrefix(topic, "$iothub/methods/POST/"), "/?")
		rid := strings.TrimPrefix(query, "$rid=")
		d.mu.Lock()
		d.methods = append(d.methods, name)
		d.mu.Unlock()
		status, resp, ok := d.answer(name, m.Payload())
		if ok {
			go d.c.Publish("$iothub/methods/res/"+itoa(status)+"/?$rid="+rid, 0, false, resp)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// publish sends a device-side twin request and waits for its PUBACK.
func (d *testDevice) publish(t *testing.T, topic, payload string) {
	t.Helper()
	if tok := d.c.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// desiredPushes returns the desired property pushes received so far.
func (d *testDevice) desiredPushes() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.desired...)
}

// waitDesired waits until the device got n pushes and returns the last.
func (d *testDevice) waitDesired(t *testing.T, n int) string {
	t.Helper()
	var got []string
	eventually(t, func() error {
		if got = d.desiredPushes(); len(got) < n {
			return errors.New("desired pushes: " + strings.Join(got, " | "))
		}
		return nil
	})
	return got[n-1]
}

// twinJSON reads a twin through the CLI as JSON.
func (h *twinHub) twinJSON(id string) map[string]any {
	h.t.Helper()
	out := h.mustRun(h.t, "device", "twin", "show", id, "-o", "json")
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		h.t.Fatalf("twin show -o json is not JSON: %v\n%s", err, out)
	}
	return m
}

func section(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m, _ = m[p].(map[string]any)
	}
	return m
}

func TestTwinShowAndUpdate(t *testing.T) {
	h := startTwinHub(t)
	key := h.create("thermo-1")
	dev := h.connectDevice("thermo-1", key, func(string, []byte) (int, string, bool) { return 0, "", false })
	dev.publish(t, "$iothub/twin/PATCH/properties/reported/?$rid=1", `{"fw":"1.2","sensor":{"unit":"C","range":[0,100]}}`)
	eventually(t, func() error {
		if section(h.twinJSON("thermo-1"), "properties", "reported")["fw"] != "1.2" {
			return errors.New("reported patch not in the twin yet")
		}
		return nil
	})

	// Table: identity, then flattened sections with $version, no $metadata.
	out := h.mustRun(t, "device", "twin", "show", "thermo-1")
	for _, want := range []string{"Device ID:         thermo-1", "Connection state:  Connected", "Version:",
		"Tags: (none)", "Desired properties:\n  $version = 1\nReported properties:\n  $version = 2\n  fw = \"1.2\"\n  sensor.range = [0,100]\n  sensor.unit = \"C\"\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("twin show lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "$metadata") {
		t.Errorf("metadata shown without --metadata:\n%s", out)
	}
	out = h.mustRun(t, "device", "twin", "show", "thermo-1", "--metadata")
	if !strings.Contains(out, "  $metadata.fw.$lastUpdated = \"") || !strings.Contains(out, "  $metadata.sensor.unit.$lastUpdated = \"") {
		t.Errorf("--metadata lacks member metadata:\n%s", out)
	}

	// JSON: the hub's twin, member order kept.
	out = h.mustRun(t, "device", "twin", "show", "thermo-1", "-o", "json")
	if !strings.HasPrefix(out, "{\n  \"deviceId\": \"thermo-1\",\n  \"etag\": \"") {
		t.Errorf("json does not start as the hub's twin:\n%s", out)
	}
	tw := h.twinJSON("thermo-1")
	etag := tw["etag"].(string)

	// Merge desired properties: the device gets the patch.
	out = h.mustRun(t, "device", "twin", "update", "thermo-1", "--desired", `{"interval":5,"alarm":{"high":80}}`)
	if !strings.Contains(out, "Desired properties:\n  $version = 2\n  alarm.high = 80\n  interval = 5\n") {
		t.Errorf("update output:\n%s", out)
	}
	if got := dev.waitDesired(t, 1); got != `$iothub/twin/PATCH/properties/desired/?$version=2 {"interval":5,"alarm":{"high":80},"$version":2}` &&
		got != `$iothub/twin/PATCH/properties/desired/?$version=2 {"alarm":{"high":80},"interval":5,"$version":2}` {
		t.Errorf("desired push: %s", got)
	}

	// The etag read before that write is stale: 412, explained, nothing written.
	_, err := h.run(t, "device", "twin", "update", "thermo-1", "--tags", `{"site":"b1"}`, "--etag", etag)
	if err == nil || !strings.Contains(err.Error(), "the twin of thermo-1 changed since you read it (etag "+etag+")") ||
		!strings.Contains(err.Error(), "tether device twin show thermo-1") || !strings.Contains(err.Error(), "412") {
		t.Fatalf("stale etag: %v", err)
	}
	if tags := section(h.twinJSON("thermo-1"), "tags"); len(tags) != 0 {
		t.Fatalf("412 wrote tags: %v", tags)
	}

	// Tags from a file with the current etag (quoted or not), JSON output.
	file := filepath.Join(t.TempDir(), "tags.json")
	if err := os.WriteFile(file, []byte("{\n  \"site\": \"b1\",\n  \"loc\": {\"floor\": 2, \"room\": \"2.14\"}\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	etag = h.twinJSON("thermo-1")["etag"].(string)
	out = h.mustRun(t, "device", "twin", "update", "thermo-1", "--tags", "@"+file, "--etag", `"`+etag+`"`, "-o", "json")
	var updated map[string]any
	if err := json.Unmarshal([]byte(out), &updated); err != nil || section(updated, "tags", "loc")["room"] != "2.14" || updated["etag"] == etag {
		t.Fatalf("tags from file: %v\n%s", err, out)
	}
	if n := len(dev.desiredPushes()); n != 1 {
		t.Errorf("a tags-only write pushed desired properties (%d pushes)", n)
	}

	// Null removes a member; standard input with @-.
	out, _, err = h.runIn(`{"loc":{"room":null}}`, "device", "twin", "update", "thermo-1", "--tags", "@-")
	if err != nil || !strings.Contains(out, "Tags:\n  loc.floor = 2\n  site = \"b1\"\nDesired") {
		t.Fatalf("null tag: %v\n%s", err, out)
	}

	// --replace of desired: members not given are gone (pushed as null to
	// the device), tags kept.
	out = h.mustRun(t, "device", "twin", "update", "thermo-1", "--desired", `{"mode":"eco"}`, "--replace")
	if !strings.Contains(out, "Desired properties:\n  $version = 3\n  mode = \"eco\"\nReported") || !strings.Contains(out, "site = \"b1\"") {
		t.Fatalf("replace desired:\n%s", out)
	}
	push := dev.waitDesired(t, 2)
	for _, want := range []string{`"mode":"eco"`, `"interval":null`, `"alarm":null`, `"$version":3`} {
		if !strings.Contains(push, want) {
			t.Errorf("replacement push lacks %s: %s", want, push)
		}
	}
	// --replace of tags alone keeps desired as it is.
	out = h.mustRun(t, "device", "twin", "update", "thermo-1", "--tags", `{"owner":"ops"}`, "--replace")
	if !strings.Contains(out, "Tags:\n  owner = \"ops\"\nDesired") || !strings.Contains(out, `mode = "eco"`) {
		t.Fatalf("replace tags:\n%s", out)
	}
	if d := section(h.twinJSON("thermo-1"), "properties", "desired"); d["mode"] != "eco" || len(d) != 3 { // mode, $metadata, $version
		t.Fatalf("desired after replacing tags: %v", d)
	}
}

func TestTwinUpdateErrors(t *testing.T) {
	h := startTwinHub(t)
	h.create("d1")
	before := h.twinJSON("d1")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"device", "twin", "update", "d1"}, "nothing to update: give --tags, --desired or both"},
		{[]string{"device", "twin", "update", "d1", "--desired", `{"interval":x}`}, "--desired: not valid JSON at line 1, column 13: invalid character 'x' looking for beginning of value\n  {\"interval\":x}\n              ^"},
		{[]string{"device", "twin", "update", "d1", "--desired", "{\n  \"a\": 1,\n}"}, "--desired: not valid JSON at line 3, column 1: invalid character '}'"},
		{[]string{"device", "twin", "update", "d1", "--tags", `{"a":1`}, "--tags: not valid JSON at line 1, column 7: unexpected end of JSON input"},
		{[]string{"device", "twin", "update", "d1", "--tags", `[1,2]`}, "--tags: want a JSON object such as '{\"interval\":5}', got an array"},
		{[]string{"device", "twin", "update", "d1", "--tags", ``}, "--tags: empty: give a JSON value"},
		{[]string{"device", "twin", "update", "d1", "--tags", `@/nonexistent/tags.json`}, "--tags: open /nonexistent/tags.json: no such file"},
		{[]string{"device", "twin", "update", "d1", "--tags", `{"a":1}`, "--etag", ""}, `--etag "": give the etag`},
		{[]string{"device", "twin", "update", "d1", "--desired", `{"$bad":1}`}, "400"},
		{[]string{"device", "twin", "update", "ghost", "--desired", `{"a":1}`}, "404"},
		{[]string{"device", "twin", "show", "ghost"}, "hub answered 404: ErrorCode:DeviceNotFound;device 'ghost' is not registered"},
		{[]string{"device", "twin", "show"}, "takes the device id (got 0 arguments)"},
		{[]string{"device", "twin", "show", "d1", "-o", "yaml"}, `unknown output format "yaml"`},
	} {
		_, err := h.run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("tether %q: error %v, want %q", tc.args, err, tc.msg)
		}
	}
	after := h.twinJSON("d1")
	if before["etag"] != after["etag"] {
		t.Errorf("failed updates changed the twin: %v → %v", before["etag"], after["etag"])
	}
}
