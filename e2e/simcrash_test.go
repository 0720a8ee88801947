package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/sim"
)

// Issue 17 item 6: the hub killed (SIGKILL) during a simulation and
// started again. The hub records the sessions it died with as
// DeviceDisconnected 500001 (hub-restart) when it is back; the
// simulator's hub-crash fault expects exactly that, so a correct recovery
// is a clean comparison — every event and log record accounted for.
func TestSimHubCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a hub")
	}
	h := newHub(t, tetherBinary(t), filepath.Join(t.TempDir(), "data"))
	h.start()
	a := h.api()
	ca, err := os.ReadFile(filepath.Join(h.dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cfg := sim.Config{
		Devices: 200, Prefix: "crash", Duration: 25 * time.Second, Ramp: 200, Profile: "node",
		Telemetry: 2 * time.Second, TokenTTL: 20 * time.Second,
		Faults:  sim.Faults{{Kind: sim.FaultHubCrash, At: 10 * time.Second}},
		HubName: "localhost", MQTTAddr: h.mqttAddr, HTTPSAddr: h.httpsAddr, CAPEM: ca,
		Settle: 60 * time.Second,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := sim.Run(ctx, cfg, sim.Env{
		API: a.Client, Out: &out, Logf: t.Logf,
		CrashHub: func(ctx context.Context) error {
			h.Kill()
			return h.Start(ctx)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	rep.WriteText(&out)
	t.Log("\n" + out.String())
	if rep.HubCrash == nil || rep.HubCrash.Err != "" || rep.HubCrash.At.IsZero() {
		t.Fatalf("the crash did not happen: %+v", rep.HubCrash)
	}
	crashed := 0
	for _, c := range rep.Comparison.Causes {
		if c.Cause == "hub-crash" && c.Type == "DeviceDisconnected" && c.Result == "500001" {
			crashed = c.Matched
			if c.Matched != c.Expected {
				t.Errorf("hub-crash disconnects: %d of %d matched", c.Matched, c.Expected)
			}
		}
	}
	// Every device is connected at the kill (the ramp took 1 s), save the
	// few renewing then.
	if crashed < cfg.Devices*9/10 {
		t.Errorf("%d DeviceDisconnected 500001 (hub-crash) matched, want about %d", crashed, cfg.Devices)
	}
	if !rep.OK() {
		t.Errorf("the comparison found mismatches after a correct recovery")
	}
}
