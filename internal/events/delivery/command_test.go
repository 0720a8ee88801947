package delivery

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/presence"
)

// handlerScript is a program for the command directory: it appends a
// record of each run (its environment and stdin) to the file named by its
// first argument, notes an overlap if another run for the same output is
// in progress, then exits with the status in <out>.exit (0 if absent), or
// hangs when <out>.hang exists.
const handlerScript = `#!/bin/sh
out="$1"
if ! mkdir "$out.lock" 2>/dev/null; then echo overlap >> "$out.overlap"; fi
if [ -e "$out.hang" ]; then touch "$out.hung"; sleep 60; fi
{
  echo "--- $TETHER_SUBSCRIPTION $TETHER_DELIVERY_COUNT $TETHER_EVENT_COUNT $TETHER_DEVICE_ID $TETHER_EVENT_TYPE $TETHER_CONTENT_TYPE secret=${TETHER_SMTP_PASSWORD:-none}"
  cat
  echo
} >> "$out"
echo "handled $TETHER_EVENT_ID"
sleep 0.02
rmdir "$out.lock"
exit "$(cat "$out.exit" 2>/dev/null || echo 0)"
`

// commandEnv is a test env with a command directory holding handler.sh.
type commandEnv struct {
	*env
	dir, out string
}

func newCommandEnv(t *testing.T) *commandEnv {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "handler.sh"), []byte(handlerScript), 0o755); err != nil {
		t.Fatal(err)
	}
	cd, err := NewCommandDestination(dir)
	if err != nil {
		t.Fatal(err)
	}
	v := newEnv(t, func(o *Options) { o.Destinations = map[string]Destination{events.EndpointCommand: cd} })
	return &commandEnv{env: v, dir: dir, out: filepath.Join(t.TempDir(), "runs")}
}

func (c *commandEnv) commandSub(name string, mod ...func(*events.Subscription)) {
	c.t.Helper()
	c.subTo(name, events.Destination{EndpointType: events.EndpointCommand, Properties: events.DestinationProperties{
		CommandProperties: events.CommandProperties{Command: []string{"handler.sh", c.out}}}}, mod...)
}

// run is one recorded run of handler.sh.
type run struct {
	env    []string
	events []got
}

func (c *commandEnv) runs() []run {
	b, _ := os.ReadFile(c.out)
	var out []run
	parts := strings.Split(string(b), "--- ")[1:]
	for i, part := range parts {
		head, body, _ := strings.Cut(part, "\n")
		r := run{env: strings.Fields(head)}
		if err := json.Unmarshal([]byte(body), &r.events); err != nil {
			if i == len(parts)-1 && !strings.HasSuffix(body, "\n") {
				break // still being written
			}
			c.t.Fatalf("stdin is not an Event Grid array: %v: %q", err, body)
		}
		out = append(out, r)
	}
	return out
}

func (c *commandEnv) ran(dev string) []string {
	var out []string
	for _, r := range c.runs() {
		for _, e := range r.events {
			if e.Subject == "devices/"+dev {
				out = append(out, e.ID)
			}
		}
	}
	return out
}

// Each event runs the program once with the event (an Event Grid array)
// on stdin and TETHER_* variables, each device's in order and never two
// runs at once with maxConcurrency 1; the hub's environment is not passed
// on; the output is in the delivery log.
func TestCommandDestination(t *testing.T) {
	t.Setenv("TETHER_SMTP_PASSWORD", "must-not-leak")
	c := newCommandEnv(t)
	c.start()
	c.commandSub("run-it", func(s *events.Subscription) { s.Destination.Properties.MaxConcurrency = 1 })
	var want = map[string][]string{}
	for i := range 3 {
		for _, d := range []string{"d1", "d2"} {
			kind := presence.Connected
			if i%2 == 1 {
				kind = presence.Disconnected
			}
			want[d] = append(want[d], id(c.conn(d, kind)))
		}
	}
	eventually(t, "six runs", func() bool { return c.stats("run-it").Delivered == 6 })
	for _, d := range []string{"d1", "d2"} {
		if got := c.ran(d); !equal(got, want[d]) {
			t.Errorf("%s ran %v, want %v", d, got, want[d])
		}
	}
	r := c.runs()[0]
	if strings.Join(r.env, " ") != "run-it 0 1 d1 Microsoft.Devices.DeviceConnected application/json; charset=utf-8 secret=none" {
		t.Errorf("environment %q", r.env)
	}
	if _, err := os.Stat(c.out + ".overlap"); err == nil {
		t.Error("two runs at once with maxConcurrency 1")
	}
	log := c.eng.Deliveries("run-it", 100)
	if len(log) != 6 || !log[0].OK || log[5].Output != "handled "+want["d1"][0] || log[5].Devices[0] != "d1" || log[5].Attempt != 1 {
		t.Errorf("delivery log %+v", log)
	}
}

// A failing program (exit 3) is retried on the schedule, then
// dead-lettered with its exit status and output; once it works, replay
// runs it again. Every attempt is in the delivery log.
func TestCommandFailureRetriedThenDeadLettered(t *testing.T) {
	c := newCommandEnv(t)
	c.start()
	c.commandSub("run-it", func(s *events.Subscription) { s.RetryPolicy.MaxDeliveryAttempts = 3 })
	if err := os.WriteFile(c.out+".exit", []byte("3"), 0o644); err != nil {
		t.Fatal(err)
	}
	e1 := c.conn("d1", presence.Disconnected)
	e2 := c.conn("d1", presence.Connected)
	c.clock.AdvanceTo(waitRetry(t, c.env, "run-it", 1))
	c.clock.AdvanceTo(waitRetry(t, c.env, "run-it", 2))
	eventually(t, "dead letter", func() bool { return c.stats("run-it").DeadLettered == 1 })
	dls, _ := c.eng.DeadLetters(c.ctx, "run-it", 0)
	if len(dls) != 1 || dls[0].Event.ID != id(e1) || dls[0].Reason != events.DeadLetterMaxAttempts || dls[0].DeliveryAttempts != 3 ||
		dls[0].LastDeliveryOutcome != "ExitStatus3" || dls[0].LastHTTPStatus != 0 ||
		!strings.Contains(dls[0].LastError, "handler.sh exited with status 3: handled "+id(e1)) {
		t.Fatalf("dead letters %+v", dls)
	}
	st := c.stats("run-it")
	if st.LastError == "" || st.FailedAttempts < 3 {
		t.Errorf("stats %+v", st)
	}
	// The device's next event went after the dead letter, and failed too.
	eventually(t, "second event retrying", func() bool { return c.stats("run-it").Retrying == 1 })
	os.Remove(c.out + ".exit")
	c.clock.AdvanceTo(c.clock.Pending()[0])
	eventually(t, "second delivered", func() bool { return c.stats("run-it").Delivered == 1 && c.stats("run-it").Retrying == 0 })
	n, err := c.eng.Replay(c.ctx, "run-it")
	if err != nil || n != 1 {
		t.Fatalf("replay %d %v", n, err)
	}
	eventually(t, "replayed", func() bool { return c.stats("run-it").Delivered == 2 })
	ok := c.ran("d1")
	if len(ok) < 2 || ok[len(ok)-1] != id(e1) || !strings.Contains(strings.Join(ok, " "), id(e2)) {
		t.Errorf("runs %v", ok)
	}
	if log := c.eng.Deliveries("run-it", 100); len(log) != 6 || log[0].Outcome != "" || log[len(log)-1].Outcome != "ExitStatus3" {
		t.Errorf("log %+v", log)
	}
}

// A hung program is killed at its timeout (on the engine's clock) and
// the attempt is retried.
func TestCommandTimeout(t *testing.T) {
	c := newCommandEnv(t)
	c.start()
	c.commandSub("run-it", func(s *events.Subscription) { s.Destination.Properties.TimeoutInSeconds = 5 })
	if err := os.WriteFile(c.out+".hang", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e := c.conn("d1", presence.Connected)
	eventually(t, "program hangs", func() bool { _, err := os.Stat(c.out + ".hung"); return err == nil })
	os.Remove(c.out + ".hang")
	os.Remove(c.out + ".lock")
	start := time.Now()
	c.clock.Advance(5 * time.Second)
	next := waitRetry(t, c.env, "run-it", 1)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the kill took %v", took)
	}
	log := c.eng.Deliveries("run-it", 1)
	if len(log) != 1 || log[0].Outcome != OutcomeTimedOut || !strings.Contains(log[0].Error, "no exit within 5s; killed") {
		t.Fatalf("log %+v", log)
	}
	c.clock.AdvanceTo(next)
	eventually(t, "delivered on retry", func() bool { return equal(c.ran("d1"), ids(e)) })
}

// The program must be an executable file of the command directory: the
// check says what is wrong, and a program removed after the check fails
// for good (NonRetriableError).
func TestCommandProgramRules(t *testing.T) {
	c := newCommandEnv(t)
	c.start()
	outside := filepath.Join(t.TempDir(), "evil.sh")
	os.WriteFile(outside, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(c.dir, "plain.txt"), []byte("x"), 0o644)
	os.Symlink(outside, filepath.Join(c.dir, "link.sh"))
	for prog, want := range map[string]string{
		outside:               "outside the hub's command directory",
		"../evil.sh":          "not in the hub's command directory",
		"link.sh":             "outside the hub's command directory",
		"plain.txt":           "not executable",
		"missing.sh":          "not in the hub's command directory",
		"/bin/sh":             "outside the hub's command directory",
		c.dir + "/handler.sh": "",
	} {
		s := events.Subscription{Name: "run-it", Destination: events.Destination{EndpointType: events.EndpointCommand,
			Properties: events.DestinationProperties{CommandProperties: events.CommandProperties{Command: []string{prog}}}}}
		s.ApplyDefaults()
		s = c.eng.Check(c.ctx, s)
		if want == "" {
			if s.ProvisioningState != events.Succeeded {
				t.Errorf("%s: %+v", prog, s.Validation)
			}
		} else if s.ProvisioningState != events.Failed || !strings.Contains(s.Validation.Error, want) {
			t.Errorf("%s: %s %+v, want %q", prog, s.ProvisioningState, s.Validation, want)
		}
	}
	c.commandSub("run-it")
	os.Remove(filepath.Join(c.dir, "handler.sh"))
	c.conn("d1", presence.Connected)
	eventually(t, "dead letter", func() bool { return c.stats("run-it").DeadLettered == 1 })
	dls, _ := c.eng.DeadLetters(c.ctx, "run-it", 0)
	if len(dls) != 1 || dls[0].Reason != events.DeadLetterNonRetriableError || dls[0].LastDeliveryOutcome != "NotStarted" || dls[0].DeliveryAttempts != 1 {
		t.Fatalf("%+v", dls)
	}
}
