package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tether serve --rules re-reads the file on SIGHUP; a file with problems
// is refused (logged with positions) and the rules in force stay.
func TestAlertRulesReloadOnSIGHUP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	rule := func(name string) string {
		return fmt.Sprintf(`
  - name: %s
    metric: {name: connectedDeviceCount}
    operator: GreaterThan
    threshold: 1000000
    frequency: 1s
`, name)
	}
	write := func(content string) {
		if err := os.WriteFile(rules, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("rules:" + rule("first"))
	h := newHub(t, tetherBinary(t), filepath.Join(dir, "data"))
	h.Args = []string{"--rules", rules}
	h.start()
	a := h.api()
	names := func() ([]string, error) {
		st, body, err := a.Do(ctx, "GET", "/api/v1/alerts", nil)
		if err != nil || st != 200 {
			return nil, fmt.Errorf("GET /api/v1/alerts: %d %v %s", st, err, body)
		}
		var list struct {
			Rules []struct {
				Name          string `json:"name"`
				LastEvaluated string `json:"lastEvaluated"`
			} `json:"rules"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return nil, err
		}
		var out []string
		for _, r := range list.Rules {
			out = append(out, r.Name)
		}
		return out, nil
	}
	waitNames := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got, err := names()
			if err == nil && strings.Join(got, ",") == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("rules %v (%v), want %s", got, err, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitNames("first")

	write("rules:" + rule("first") + rule("second"))
	hup(t, h)
	waitNames("first,second")

	write("rules:" + rule("first") + "    colour: red\n")
	hup(t, h)
	deadline := time.Now().Add(20 * time.Second)
	for len(h.logLines(`unknown key \"colour\"`)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the refused reload was not logged")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if l := h.logLines(`unknown key \"colour\"`)[0]; !strings.Contains(l, "rules.yaml:7:5: rules[0].colour") {
		t.Fatalf("log line without the position: %s", l)
	}
	waitNames("first,second")
	if !h.stop(20 * time.Second) {
		t.Fatal("the hub did not stop cleanly")
	}
}

// hup sends SIGHUP to the hub's process (only that pid).
func hup(t *testing.T, h *hubProc) {
	t.Helper()
	if err := syscall.Kill(h.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}
