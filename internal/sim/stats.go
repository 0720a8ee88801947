package sim

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/tether-hub/tether/internal/mqttclient"
)

// Stats are the live counters of one process's fleet.
type Stats struct {
	Connected      atomic.Int64 // sessions open now
	Connects       atomic.Int64 // CONNACK 0
	Disconnects    atomic.Int64 // sessions ended (any side)
	Renewals       atomic.Int64 // token renewal reconnects
	LateRenewals   atomic.Int64 // renewals due after the token's expiry (the hub closed first)
	ForcedCloses   atomic.Int64 // DISCONNECTs the hub did not close within 30 s
	TelemetrySent  atomic.Int64
	TelemetryAcked atomic.Int64
	Retries        atomic.Int64
	Throttled      atomic.Int64     // connects a throttle of the hub refused (CONNACK 3, or closed before the TLS handshake)
	GaveUp         atomic.Int64     // devices whose SDK stopped retrying
	Faults         [10]atomic.Int64 // by index in faultKinds
	FaultsSkipped  atomic.Int64     // fault times that found the device offline
	TwinRequests   atomic.Int64     // twin GETs and reported patches sent
	TwinAnswers    atomic.Int64     // answers to them
	DesiredPushes  atomic.Int64     // desired-property pushes received
	MethodCalls    atomic.Int64     // direct method calls received
	MethodAnswers  atomic.Int64     // answers sent

	mu     sync.Mutex
	errors map[string]int64 // failed connects by kind
}

func (s *Stats) countError(err error) {
	k := ErrorKind(err)
	s.mu.Lock()
	if s.errors == nil {
		s.errors = map[string]int64{}
	}
	s.errors[k]++
	s.mu.Unlock()
}

func (s *Stats) fault(k FaultKind) {
	for i, fk := range faultKinds {
		if fk == k {
			s.Faults[i].Add(1)
		}
	}
}

// ErrorKind buckets a failed connect: "connack rc=5", "tls: timeout",
// "dial: connection refused"…
func ErrorKind(err error) string { return mqttclient.FailureKind(err) }

// Snapshot is Stats at one moment, summable across processes.
type Snapshot struct {
	Connected      int64            `json:"connected"`
	Connects       int64            `json:"connects"`
	Disconnects    int64            `json:"disconnects"`
	Renewals       int64            `json:"renewals"`
	LateRenewals   int64            `json:"lateRenewals"`
	ForcedCloses   int64            `json:"forcedCloses"`
	TelemetrySent  int64            `json:"telemetrySent"`
	TelemetryAcked int64            `json:"telemetryAcked"`
	Retries        int64            `json:"retries"`
	Throttled      int64            `json:"throttled,omitempty"`
	GaveUp         int64            `json:"gaveUp"`
	Faults         map[string]int64 `json:"faults,omitempty"`
	FaultsSkipped  int64            `json:"faultsSkipped"`
	TwinRequests   int64            `json:"twinRequests,omitempty"`
	TwinAnswers    int64            `json:"twinAnswers,omitempty"`
	DesiredPushes  int64            `json:"desiredPushes,omitempty"`
	MethodCalls    int64            `json:"methodCalls,omitempty"`
	MethodAnswers  int64            `json:"methodAnswers,omitempty"`
	Errors         map[string]int64 `json:"errors,omitempty"`
}

// Snapshot reads the counters.
func (s *Stats) Snapshot() Snapshot {
	out := Snapshot{
		Connected: s.Connected.Load(), Connects: s.Connects.Load(), Disconnects: s.Disconnects.Load(),
		Renewals: s.Renewals.Load(), LateRenewals: s.LateRenewals.Load(), ForcedCloses: s.ForcedCloses.Load(), TelemetrySent: s.TelemetrySent.Load(), TelemetryAcked: s.TelemetryAcked.Load(),
		Retries: s.Retries.Load(), Throttled: s.Throttled.Load(), GaveUp: s.GaveUp.Load(), FaultsSkipped: s.FaultsSkipped.Load(),
		TwinRequests: s.TwinRequests.Load(), TwinAnswers: s.TwinAnswers.Load(), DesiredPushes: s.DesiredPushes.Load(),
		MethodCalls: s.MethodCalls.Load(), MethodAnswers: s.MethodAnswers.Load(),
		Faults: map[string]int64{}, Errors: map[string]int64{},
	}
	for i, k := range faultKinds {
		if n := s.Faults[i].Load(); n > 0 {
			out.Faults[string(k)] = n
		}
	}
	s.mu.Lock()
	for k, v := range s.errors {
		out.Errors[k] = v
	}
	s.mu.Unlock()
	return out
}

// Add sums two snapshots.
func (a Snapshot) Add(b Snapshot) Snapshot {
	out := Snapshot{
		Connected: a.Connected + b.Connected, Connects: a.Connects + b.Connects,
		Disconnects: a.Disconnects + b.Disconnects, Renewals: a.Renewals + b.Renewals, LateRenewals: a.LateRenewals + b.LateRenewals, ForcedCloses: a.ForcedCloses + b.ForcedCloses,
		TelemetrySent: a.TelemetrySent + b.TelemetrySent, TelemetryAcked: a.TelemetryAcked + b.TelemetryAcked,
		Retries: a.Retries + b.Retries, Throttled: a.Throttled + b.Throttled, GaveUp: a.GaveUp + b.GaveUp, FaultsSkipped: a.FaultsSkipped + b.FaultsSkipped,
		TwinRequests: a.TwinRequests + b.TwinRequests, TwinAnswers: a.TwinAnswers + b.TwinAnswers,
		DesiredPushes: a.DesiredPushes + b.DesiredPushes, MethodCalls: a.MethodCalls + b.MethodCalls,
		MethodAnswers: a.MethodAnswers + b.MethodAnswers,
		Faults:        map[string]int64{}, Errors: map[string]int64{},
	}
	for _, m := range []map[string]int64{a.Faults, b.Faults} {
		for k, v := range m {
			out.Faults[k] += v
		}
	}
	for _, m := range []map[string]int64{a.Errors, b.Errors} {
		for k, v := range m {
			out.Errors[k] += v
		}
	}
	return out
}

// sortedKeys returns m's keys by descending value.
func sortedKeys(m map[string]int64) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		if m[ks[i]] != m[ks[j]] {
			return m[ks[i]] > m[ks[j]]
		}
		return ks[i] < ks[j]
	})
	return ks
}
