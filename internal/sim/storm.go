package sim

import (
	"fmt"
	"io"
	"time"
)

// StormRecovery is how the fleet came back from the storm fault: the
// devices it dropped, how many reconnected and when the last did, and the
// connects the hub's throttles refused meanwhile (a hub with throttling
// spreads the reconnects at its rate; docs/sizing.md).
type StormRecovery struct {
	AtS         float64 `json:"atSeconds"` // after the start
	Dropped     int     `json:"dropped"`
	Reconnected int     `json:"reconnected"`
	// AllBackS is from the storm to the last reconnect of a dropped device.
	AllBackS float64 `json:"allBackSeconds"`
	// Throttled are the run's connects refused by a throttle of the hub
	// (CONNACK 3, or closed before the TLS handshake), storm or not.
	Throttled int64 `json:"throttled"`
}

// stormRecovery reads the storm's drops and reconnects from the ledger
// (nil without a storm fault).
func stormRecovery(cfg *Config, start time.Time, ledger []Expect, throttled int64) *StormRecovery {
	f, ok := cfg.Faults.Get(FaultStorm)
	if !ok {
		return nil
	}
	at := start.Add(f.At)
	r := &StormRecovery{AtS: f.At.Seconds(), Throttled: throttled}
	var last int64
	for _, e := range ledger {
		if e.Cause != CauseStorm {
			continue
		}
		switch e.Kind {
		case KindDisconnected:
			r.Dropped++
		case KindConnected:
			r.Reconnected++
			last = max(last, e.At)
		}
	}
	if last > 0 {
		r.AllBackS = time.Unix(0, last).Sub(at).Seconds()
	}
	return r
}

func (r *StormRecovery) writeText(w io.Writer) {
	if r == nil {
		return
	}
	fmt.Fprintf(w, "storm at %.0fs: %d devices dropped, %d reconnected, the last %.1fs after the storm; %d connects refused by the hub's throttles during the run\n",
		r.AtS, r.Dropped, r.Reconnected, r.AllBackS, r.Throttled)
}
