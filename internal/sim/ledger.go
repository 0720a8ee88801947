package sim

import (
	"sync"
	"time"
)

// Kind is what the hub should report for one thing a device did.
type Kind uint8

const (
	KindConnected    Kind = iota + 1 // DeviceConnected; deviceConnect Information
	KindDisconnected                 // DeviceDisconnected; deviceDisconnect
	KindRefused                      // no event; deviceConnect Error
	KindTimeout                      // no event; deviceConnect Error without a device id (handshake never finished)
	// KindRefused with Device -1: refused by a throttle before the TLS
	// handshake (deviceConnect 429001 without a device id).
)

var kindNames = [...]string{"", "DeviceConnected", "DeviceDisconnected", "ConnectRefused", "ConnectTimeout"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "?"
}

// Cause is why the device did it.
type Cause uint8

const (
	CauseConnect     Cause = iota + 1 // first connect
	CauseRenewal                      // SAS token renewal
	CauseDrop                         // drop fault (and the reconnect after it)
	CauseSilence                      // keep-alive silence fault
	CauseTakeover                     // a duplicate-id twin replaced the session
	CauseExpired                      // expired-token attempt
	CauseWrongKey                     // wrong-key attempt
	CauseDisabled                     // device disabled in the registry
	CauseStorm                        // reconnect storm
	CauseSlowTLS                      // slow TLS client
	CauseStop                         // end of the run
	CauseRetry                        // a retry after a failure not caused by a fault
	CauseUnexplained                  // the hub closed a session for no reason the simulator knows
	CauseThrottled                    // a throttle of the hub refused the connect (a storm's retries)
	CauseHubCrash                     // the hub (or a cluster node) was killed (hub-crash fault) with the session open
	CauseNodeStop                     // a cluster node was stopped (rolling-restart fault) with the session open
)

var causeNames = [...]string{"", "connect", "renewal", "drop", "silence", "takeover", "expired", "wrongkey",
	"disabled", "storm", "slow", "stop", "retry", "unexplained", "throttled", "hub-crash", "node-stop"}

func (c Cause) String() string {
	if int(c) < len(causeNames) {
		return causeNames[c]
	}
	return "?"
}

// Result codes the simulator expects.
const (
	ResultOK             = ""
	ResultTakeover       = "400027"
	ResultClosedRemotely = "404104"
	ResultUnauthorized   = "401003"
	ResultTimeout        = "500008"
	ResultThrottled      = "429001" // a throttle refused the connect
	ResultDevThrottled   = "429005" // the device's own connects were throttled
	// ResultServerError is what the hub records, when it is back, for the
	// sessions it died with: reason hub-restart, IoT Hub's 500001
	// ServerError (a fault on the hub's side, retried by the device).
	ResultServerError = "500001"
)

// Expect is one thing the hub should report.
type Expect struct {
	Device int32  `json:"d"` // device index; -1 when the hub cannot know it (KindTimeout, a refusal before the TLS handshake)
	Kind   Kind   `json:"k"`
	Result string `json:"r,omitempty"`
	Cause  Cause  `json:"c"`
	At     int64  `json:"t"` // unix ns, the simulator's clock
	// TokenExpiry: the hub closed the session at token expiry (its log
	// then has two records, 401003 and 404104).
	TokenExpiry bool `json:"x,omitempty"`
	// ExpiryRace: a DISCONNECT sent in the token's last second; the hub
	// may have closed the session for the expiry first (then Alt 404104,
	// and its log may have the 401003 record before it).
	ExpiryRace bool `json:"xr,omitempty"`
	Renewal    bool `json:"n,omitempty"` // a reconnect with a renewed token
	// RenewalUnsure: the hub may or may not mark this connect a renewal
	// (a renewal whose DISCONNECT the hub did not close within 30 s; a
	// first connect soon after an earlier run's session of the device).
	RenewalUnsure bool `json:"u,omitempty"`
	// Alt is another ResultType the hub may rightly report: a dropped
	// device whose reconnect reaches the hub before the hub noticed the
	// drop, or a device whose duplicate-id twin connects while it drops
	// or disconnects, is recorded as replaced (400027).
	Alt string `json:"a,omitempty"` // several: separated by "|"
	// Maybe: the hub may or may not report this — a connect in flight
	// when the hub was killed may have been stored (then its session is
	// closed 500001 at the restart) or not. Unmet, it is not missing.
	Maybe bool `json:"m,omitempty"`
}

// Ledger collects expectations from all devices of a process.
type Ledger struct {
	mu  sync.Mutex
	all []Expect
}

func (l *Ledger) add(e Expect) {
	l.mu.Lock()
	l.all = append(l.all, e)
	l.mu.Unlock()
}

func (l *Ledger) expect(dev int, k Kind, result string, c Cause, alt string) {
	l.add(Expect{Device: int32(dev), Kind: k, Result: result, Cause: c, At: time.Now().UnixNano(), Alt: alt})
}

// Entries returns a copy of what was recorded, in record order.
func (l *Ledger) Entries() []Expect {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Expect(nil), l.all...)
}
