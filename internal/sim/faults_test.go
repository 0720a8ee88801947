package sim

import (
	"strings"
	"testing"
	"time"
)

func TestParseFaults(t *testing.T) {
	fs, err := ParseFaults("drop=2%/min, dup=10,silence=1%,storm=60s,wrongkey=0.5,expired=0.1%/min,hub-crash=30s")
	if err != nil {
		t.Fatal(err)
	}
	want := []Fault{
		{Kind: FaultDrop, PerMinute: 0.02},
		{Kind: FaultDup, Count: 10},
		{Kind: FaultSilence, Fraction: 0.01},
		{Kind: FaultStorm, At: time.Minute},
		{Kind: FaultWrongKey, Fraction: 0.5},
		{Kind: FaultExpired, PerMinute: 0.001},
		{Kind: FaultHubCrash, At: 30 * time.Second},
	}
	if len(fs) != len(want) {
		t.Fatalf("got %v", fs)
	}
	for i := range want {
		if fs[i] != want[i] {
			t.Errorf("term %d: %+v, want %+v", i, fs[i], want[i])
		}
	}
	if got := fs.String(); got != "drop=2%/min,dup=10,silence=1%,storm=1m0s,wrongkey=50%,expired=0.1%/min,hub-crash=30s" {
		t.Errorf("String() = %q", got)
	}
	// Round trip.
	again, err := ParseFaults(fs.String())
	if err != nil || again.String() != fs.String() {
		t.Errorf("round trip: %v %v", again, err)
	}
}

func TestParseFaultsErrors(t *testing.T) {
	_, err := ParseFaults("drop,flood=3,dup=2%/min,silence=150%,storm=soon,drop=1,drop=2,slow=-1,hub-crash=5%")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`"drop": want kind=value`, `unknown kind "flood"`, "dup takes a count", "over 100%", "storm takes", "drop given twice", `"slow=-1"`, "hub-crash takes the time"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if fs, err := ParseFaults(""); err != nil || fs != nil {
		t.Errorf("empty: %v %v", fs, err)
	}
}

func FuzzParseFaults(f *testing.F) {
	for _, s := range []string{"drop=2%/min,dup=10", "storm=30s", "slow=1%", "x=", "=,=,", "silence=0.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fs, err := ParseFaults(s)
		if err != nil {
			return
		}
		again, err := ParseFaults(fs.String())
		if err != nil || again.String() != fs.String() {
			t.Fatalf("%q → %q → %v %v", s, fs.String(), again, err)
		}
	})
}
