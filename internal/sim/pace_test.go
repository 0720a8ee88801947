package sim

import (
	"testing"
	"time"
)

// Attempts arriving together (a node's devices coming back at once) take
// consecutive slots of the process's share of the rate; one arriving
// after the queue has drained goes at once.
func TestPacerSpacesAttemptsAtTheProcessShare(t *testing.T) {
	c := &Config{Devices: 1000, ConnectRate: 100}
	if p := newPacer(&Config{Devices: 1000}, 0, 1000); p != nil {
		t.Fatalf("no --connect-rate: want no pacer, got %+v", p)
	}
	p := newPacer(c, 0, 500) // half the fleet: 50 a second
	now := time.Unix(1_000_000, 0)
	for i := range 5 {
		if got, want := p.slot(now), time.Duration(i)*20*time.Millisecond; got != want {
			t.Fatalf("attempt %d waits %s, want %s", i, got, want)
		}
	}
	later := now.Add(time.Second)
	if got := p.slot(later); got != 0 {
		t.Errorf("an attempt after the queue drained waits %s, want 0", got)
	}
	var none *pacer
	if got := none.slot(now); got != 0 {
		t.Errorf("a nil pacer makes an attempt wait %s", got)
	}
	bad := Config{Devices: 1, Prefix: "x", Ramp: 1, Profile: "node", ConnectRate: -1}
	if err := bad.Validate(); err == nil {
		t.Error("a negative --connect-rate was accepted")
	}
}
