package main

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/sim"
)

// tether sim end to end through the CLI: a short run against an
// in-process dev hub, found through its data dir, with twins, methods and
// the service side on; the JSON report carries the twin check.
func TestSimCommandTwins(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s simulation")
	}
	dir := t.TempDir()
	a, err := app.New(app.Config{DataDir: dir, HubName: "localhost", Dev: true, MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 20*time.Second)
		defer c()
		_ = a.Stop(sctx)
	})
	h := &cliHub{flags: []string{"--data-dir", dir}}
	var out, errOut syncBuffer
	err = h.runCtx(ctx, &out, &errOut, "sim", "--devices", "8", "--duration", "6s", "--ramp", "20", "--telemetry", "0",
		"--mqtt-addr", a.MQTTAddr(), "--reported-every", "1s", "--method-rate", "10/s", "--desired-rate", "300/min",
		"--method-no-answer", "0", "--method-offline", "0.2", "--settle", "20s", "--prefix", "clisim", "--json")
	if err != nil {
		t.Fatalf("sim: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	var last struct {
		Type   string     `json:"type"`
		OK     bool       `json:"ok"`
		Report sim.Report `json:"report"`
	}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"type":"report"`) {
			if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
				t.Fatal(err)
			}
		}
	}
	tw := last.Report.Twins
	if !last.OK || tw == nil {
		t.Fatalf("report not OK or without twins:\n%s", out.String())
	}
	c := last.Report.Config
	if !c.Twin || !c.Methods || c.MethodRate != 10 || c.DesiredRate != 5 || c.ReportedEvery != time.Second {
		t.Errorf("flags did not reach the config: %+v", c)
	}
	if tw.Get.OK != 8 || tw.Reported.OK < 16 || tw.Methods.Outcomes[sim.OutcomeOK] == 0 || tw.Methods.Outcomes[sim.OutcomeNotOnline] == 0 || tw.Desired.RequiredReceived == 0 {
		t.Errorf("twin report: GET %d, reported %d, outcomes %v, desired %+v", tw.Get.OK, tw.Reported.OK, tw.Methods.Outcomes, tw.Desired)
	}
}

// Bad twin and method flags are refused before anything is registered,
// each with what was wrong.
func TestSimCommandBadTwinFlags(t *testing.T) {
	h := &cliHub{flags: []string{"--data-dir", t.TempDir(), "--connection-string", "HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=c2VjcmV0", "--url", "https://127.0.0.1:1"}}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--method-rate", "5/fortnight"}, "--method-rate"},
		{[]string{"--desired-rate", "fast"}, "--desired-rate"},
		{[]string{"--method-no-answer", "0.7", "--method-offline", "0.5"}, "together at most 1"},
		{[]string{"--method-timeout", "2s"}, "5s…300s"},
		{[]string{"--methods=false", "--method-rate", "5/s"}, "needs --methods"},
		{[]string{"--twin=false", "--desired-rate", "5/s"}, "needs --twin"},
	} {
		_, err := h.run(t, append([]string{"sim", "--devices", "1"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v; want an error about %q", c.args, err, c.want)
		}
	}
}
