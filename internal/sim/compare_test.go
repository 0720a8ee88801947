package sim

import (
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/hubclient"
)

func seq(n int) string {
	return "0000000000000000000000000000000000000000000000000000000000000000"[:62] + string(rune('0'+n/10)) + string(rune('0'+n%10))
}

// Each defect class of the comparison is found where it is, and only
// there.
func TestCompareFindsEachDefect(t *testing.T) {
	ledger := []Expect{
		{Device: 0, Kind: KindConnected, Cause: CauseConnect, At: 1},
		{Device: 0, Kind: KindDisconnected, Result: ResultClosedRemotely, Cause: CauseDrop, At: 2},
		{Device: 0, Kind: KindConnected, Cause: CauseDrop, At: 3},
		{Device: 0, Kind: KindDisconnected, Cause: CauseStop, At: 4},
		{Device: 1, Kind: KindConnected, Cause: CauseConnect, At: 1},
		{Device: 1, Kind: KindDisconnected, Result: ResultTakeover, Cause: CauseTakeover, At: 2}, // hub says 404104: wrong code
		{Device: 1, Kind: KindConnected, Cause: CauseTakeover, At: 3},                            // never delivered: missing
		{Device: 2, Kind: KindRefused, Result: ResultUnauthorized, Cause: CauseWrongKey, At: 1},
	}
	events := []observed{
		{Device: 0, Kind: KindConnected, Seq: seq(1), Arrived: 11},
		{Device: 0, Kind: KindConnected, Seq: seq(3), Arrived: 13},                                  // before seq 2: out of order for seq 2
		{Device: 0, Kind: KindDisconnected, Result: ResultClosedRemotely, Seq: seq(2), Arrived: 14}, // out of order
		{Device: 0, Kind: KindDisconnected, Seq: seq(4), Arrived: 15},
		{Device: 0, Kind: KindDisconnected, Seq: seq(4), Arrived: 16}, // duplicate
		{Device: 1, Kind: KindConnected, Seq: seq(1), Arrived: 12},
		{Device: 1, Kind: KindDisconnected, Result: ResultClosedRemotely, Seq: seq(2), Arrived: 13},
		{Device: 3, Kind: KindConnected, Seq: seq(1), Arrived: 12}, // nobody expected it
	}
	logs := map[int32][]hubclient.LogRecord{
		2: {{OperationName: "deviceConnect", ResultType: ResultUnauthorized}},
	}
	c := Compare(ledger, events, logs)
	get := func(source, typ, result string) Row {
		for _, r := range c.Rows {
			if r.Source == source && r.Type == typ && r.Result == result {
				return r
			}
		}
		t.Fatalf("no row %s %s %q in %+v", source, typ, result, c.Rows)
		return Row{}
	}
	conn := get("events", "DeviceConnected", "")
	if conn.Expected != 4 || conn.Matched != 3 || conn.Missing != 1 || conn.Unexpected != 1 || conn.OutOfOrder != 0 {
		t.Errorf("DeviceConnected: %+v", conn)
	}
	drop := get("events", "DeviceDisconnected", ResultClosedRemotely)
	if drop.Expected != 1 || drop.Matched != 1 || drop.Observed != 2 || drop.OutOfOrder != 1 || drop.WrongCode != 0 {
		t.Errorf("DeviceDisconnected 404104: %+v", drop)
	}
	take := get("events", "DeviceDisconnected", ResultTakeover)
	if take.Expected != 1 || take.WrongCode != 1 || take.Missing != 0 {
		t.Errorf("DeviceDisconnected 400027: %+v", take)
	}
	stop := get("events", "DeviceDisconnected", "")
	if stop.Matched != 1 || stop.Duplicated != 1 {
		t.Errorf("DeviceDisconnected: %+v", stop)
	}
	if ref := get("log", "deviceConnect", ResultUnauthorized); ref.Matched != 1 || ref.Expected != 1 {
		t.Errorf("log refusal: %+v", ref)
	}
	// Missing: one DeviceConnected event, and the 7 log records of
	// devices 0 and 1 (the log here has only device 2's refusal).
	if c.Missing != 1+7 || c.OutOfOrder != 1 || c.Duplicated != 1 || c.WrongCode != 1 || c.Unexpected != 1 {
		t.Errorf("totals: missing %d ooo %d dup %d wrong %d unexpected %d", c.Missing, c.OutOfOrder, c.Duplicated, c.WrongCode, c.Unexpected)
	}
	// By cause: the drop was attributed to 404104 and matched.
	found := false
	for _, cr := range c.Causes {
		if cr.Cause == "drop" && cr.Source == "events" && cr.Type == "DeviceDisconnected" && cr.Result == ResultClosedRemotely {
			found = cr.Expected == 1 && cr.Matched == 1
		}
	}
	if !found {
		t.Errorf("drop not attributed: %+v", c.Causes)
	}
}

func TestPickedChoosesExactlyCount(t *testing.T) {
	for _, n := range []int{1, 7, 100, 10000} {
		for _, count := range []int{1, 3, 10, n / 2, n} {
			if count < 1 || count > n {
				continue
			}
			got := 0
			for i := range n {
				if picked(FaultDup, 1, i, n, count) {
					got++
				}
			}
			if got != count {
				t.Errorf("n %d count %d: picked %d", n, count, got)
			}
		}
	}
	same := 0
	for i := range 1000 {
		if picked(FaultDup, 1, i, 1000, 10) && picked(FaultSilence, 1, i, 1000, 10) {
			same++
		}
	}
	if same == 10 {
		t.Error("dup and silence pick the same devices")
	}
}

// A drop of a duplicate-id device the hub recorded as a takeover matches
// through Alt; without Alt it is a wrong code.
func TestCompareAlternativeCode(t *testing.T) {
	for _, alt := range []string{ResultTakeover, ResultServerError + "|" + ResultTakeover, ""} {
		ledger := []Expect{{Device: 4, Kind: KindDisconnected, Result: ResultClosedRemotely, Cause: CauseStorm, Alt: alt}}
		events := []observed{{Device: 4, Kind: KindDisconnected, Result: ResultTakeover, Seq: seq(1)}}
		c := Compare(ledger, events, nil)
		if alt != "" && (c.AltMatched != 1 || c.WrongCode != 0 || c.Unexpected != 0) {
			t.Errorf("with Alt: %+v", c)
		}
		if alt == "" && (c.AltMatched != 0 || c.WrongCode != 1) {
			t.Errorf("without Alt: %+v", c)
		}
	}
}

// The hub-crash expectations: a session open at the kill is a 500001
// disconnect; a connect in flight is Maybe — met or not, no mismatch; a
// disconnect just before the kill matches 500001 or its own code.
func TestCompareHubCrash(t *testing.T) {
	kill := time.Unix(100, 0)
	ledger := []Expect{
		{Device: 0, Kind: KindConnected, Cause: CauseConnect, At: 1},
		{Device: 0, Kind: KindDisconnected, Result: ResultServerError, Cause: CauseHubCrash, At: kill.UnixNano() + 5},
		// Connects in flight: device 1's was stored, device 2's not.
		{Device: 1, Kind: KindConnected, Cause: CauseHubCrash, At: kill.UnixNano() - 3, Maybe: true},
		{Device: 1, Kind: KindDisconnected, Result: ResultServerError, Cause: CauseHubCrash, At: kill.UnixNano() - 3, Maybe: true},
		{Device: 2, Kind: KindConnected, Cause: CauseHubCrash, At: kill.UnixNano() - 3, Maybe: true},
		{Device: 2, Kind: KindDisconnected, Result: ResultServerError, Cause: CauseHubCrash, At: kill.UnixNano() - 3, Maybe: true},
		// Device 3 sent DISCONNECT 1 s before the kill; the hub had not
		// stored it. Device 4's, 3 s before, it had.
		{Device: 3, Kind: KindConnected, Cause: CauseConnect, At: 1},
		{Device: 3, Kind: KindDisconnected, Cause: CauseStop, At: kill.Add(-time.Second).UnixNano()},
		{Device: 4, Kind: KindConnected, Cause: CauseConnect, At: 1},
		{Device: 4, Kind: KindDisconnected, Cause: CauseStop, At: kill.Add(-3 * time.Second).UnixNano()},
	}
	crashWindow(ledger, kill, false)
	if ledger[7].Alt != ResultServerError || ledger[9].Alt != "" {
		t.Fatalf("crash window: %+v, %+v", ledger[7], ledger[9])
	}
	events := []observed{
		{Device: 0, Kind: KindConnected, Seq: seq(1)},
		{Device: 0, Kind: KindDisconnected, Result: ResultServerError, Seq: seq(2)},
		{Device: 1, Kind: KindConnected, Seq: seq(1)},
		{Device: 1, Kind: KindDisconnected, Result: ResultServerError, Seq: seq(2)},
		{Device: 3, Kind: KindConnected, Seq: seq(1)},
		{Device: 3, Kind: KindDisconnected, Result: ResultServerError, Seq: seq(2)},
		{Device: 4, Kind: KindConnected, Seq: seq(1)},
		{Device: 4, Kind: KindDisconnected, Seq: seq(2)},
	}
	c := Compare(ledger, events, nil)
	var evMissing, evOther int
	for _, r := range c.Rows {
		if r.Source == "events" {
			evMissing += r.Missing
			evOther += r.WrongCode + r.Unexpected + r.Duplicated + r.OutOfOrder
		}
	}
	if evMissing != 0 || evOther != 0 {
		t.Errorf("events: %d missing, %d other mismatches: %+v", evMissing, evOther, c.Rows)
	}
	if c.MaybeMet != 2 || c.AltMatched != 1 {
		t.Errorf("maybe met %d (want 2, device 1's), alt matched %d (want 1, device 3's)", c.MaybeMet, c.AltMatched)
	}
	// In the log nothing arrived: device 1's and 2's maybes are not
	// missing, the rest are.
	if c.MaybeUnmet != 2+4 || c.Missing != 6 {
		t.Errorf("maybe unmet %d (want 6), missing %d (want 6: devices 0, 3 and 4 in the log)", c.MaybeUnmet, c.Missing)
	}
}

// A DISCONNECT sent in the token's last second: the hub recorded either the
// client's disconnect, or the expiry (401003 then 404104 in its log); both
// compare clean, and without ExpiryRace the expiry's records do not.
func TestCompareExpiryRace(t *testing.T) {
	byClient := []hubclient.LogRecord{{OperationName: "deviceDisconnect", SequenceNumber: seq(1)}}
	byExpiry := []hubclient.LogRecord{
		{OperationName: "deviceDisconnect", ResultType: ResultUnauthorized, SequenceNumber: seq(1)},
		{OperationName: "deviceDisconnect", ResultType: ResultClosedRemotely, SequenceNumber: seq(1)},
	}
	for _, race := range []bool{true, false} {
		for name, recs := range map[string][]hubclient.LogRecord{"client": byClient, "expiry": byExpiry} {
			e := Expect{Device: 0, Kind: KindDisconnected, Cause: CauseStop}
			if race {
				e.Alt, e.ExpiryRace = ResultClosedRemotely, true
			}
			c := Compare([]Expect{e}, nil, map[int32][]hubclient.LogRecord{0: recs})
			var bad int
			for _, r := range c.Rows {
				if r.Source == "log" {
					bad += r.Missing + r.WrongCode + r.Unexpected
				}
			}
			if want := !race && name == "expiry"; (bad > 0) != want {
				t.Errorf("race %v, hub recorded the %s: %+v", race, name, c.Rows)
			}
		}
	}
}
