package sim

import (
	"testing"
)

func TestParseScenarios(t *testing.T) {
	s, err := ParseScenarios("duplicate-identity=300, idle-timeout=10%,hub-side")
	if err != nil {
		t.Fatal(err)
	}
	if s.String() != "duplicate-identity=300,idle-timeout=10%,hub-side" {
		t.Errorf("String() = %q", s.String())
	}
	for _, bad := range []string{"nope", "flapping=0", "flapping=-1", "flapping=101%", "flapping=x", "flapping,flapping"} {
		if _, err := ParseScenarios(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The scenarios get disjoint device sets of their sizes; hub-side takes
// the rest; every process computes the same assignment.
func TestScenarioAssignment(t *testing.T) {
	terms, _ := ParseScenarios("duplicate-identity=300,idle-timeout=250,mass-drop,hub-side")
	cfg := &Config{Devices: 2000, Seed: 7, Scenarios: terms}
	a := ScenarioAssignment(cfg)
	n := map[Scenario]int{}
	for _, s := range a {
		n[s]++
	}
	if n[ScenarioDuplicate] != 300 || n[ScenarioIdle] != 250 || n[ScenarioMassDrop] != 500 || n[ScenarioHubSide] != 950 || n[""] != 0 {
		t.Errorf("assignment %v", n)
	}
	b := ScenarioAssignment(cfg)
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("not deterministic")
		}
	}
	cfg.Scenarios, _ = ParseScenarios("flapping=1500,wrong-key=600")
	cfg.Defaults()
	if err := cfg.Validate(); err == nil {
		t.Error("2,100 scenario devices of 2,000 accepted")
	}
}

func FuzzParseScenarios(f *testing.F) {
	for _, s := range []string{"duplicate-identity=300", "idle-timeout=10%,hub-side", "", ",,", "mass-drop=", "x=1%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScenarios(s)
		if err != nil {
			return
		}
		again, err := ParseScenarios(sc.String())
		if err != nil || again.String() != sc.String() {
			t.Fatalf("%q → %q → %v %q", s, sc.String(), err, again.String())
		}
	})
}
