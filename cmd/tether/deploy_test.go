package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// deploy/systemd/tether.service passes `systemd-analyze verify` (with
// the binary path pointed at an executable that exists here), keeps its
// hardening, runs serve with the example configuration's path, and its
// offline security exposure stays low. Skipped without systemd-analyze
// unless TETHER_REQUIRE_SYSTEMD_ANALYZE=1.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("../../deploy/systemd/tether.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{
		"User=tether", "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/tether",
		"StateDirectory=tether", "StateDirectoryMode=0700", "ProtectHome=yes", "PrivateTmp=yes",
		"ExecStart=/usr/local/bin/tether serve --config /etc/tether/tether.yaml", "ExecReload=/bin/kill -HUP $MAINPID",
	} {
		if !strings.Contains(unit, "\n"+want+"\n") {
			t.Errorf("tether.service lacks %q", want)
		}
	}
	// The example configuration uses the unit's data dir.
	if cfg, _ := os.ReadFile("../../deploy/tether.yaml"); !strings.Contains(string(cfg), "\ndata-dir: /var/lib/tether\n") {
		t.Error("deploy/tether.yaml's data-dir is not the unit's StateDirectory")
	}

	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("TETHER_REQUIRE_SYSTEMD_ANALYZE") == "1" {
			t.Fatal("systemd-analyze is not installed; TETHER_REQUIRE_SYSTEMD_ANALYZE=1 requires it")
		}
		t.Skip("systemd-analyze is not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tether.service")
	os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/tether", self)), 0o644)
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(sa, "security", "--offline=yes", path).CombinedOutput()
	if err != nil {
		t.Skipf("systemd-analyze security --offline is not available here: %v", err)
	}
	m := regexp.MustCompile(`Overall exposure level for tether.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.5 {
		t.Errorf("security exposure %.1f, want ≤ 2.5 (systemd-analyze security)", level)
	}
}
