package events

import "time"

// DeliveryStatus is what a subscription's delivery has done since the hub
// started (counters) and holds now (gauges), for operators: the figures of
// tether sub show, GET /api/v1/subscriptions/{name}/status.
type DeliveryStatus struct {
	// EndpointType and Target name the destination (Destination.Kind,
	// Destination.Target).
	EndpointType string `json:"endpointType"`
	Target       string `json:"target"`
	// Running: the hub reads the journal for the subscription. Active: it
	// delivers (validated, not disabled). Recovering: it waits for events
	// a previous run left unacknowledged.
	Running    bool `json:"running"`
	Active     bool `json:"active"`
	Recovering bool `json:"recovering,omitempty"`

	// Delivered events; Retrying events waiting for another attempt;
	// DeadLettered and Dropped (no dead-lettering) events whose delivery
	// ended without success; FailedAttempts failed deliveries (a batch
	// counts once).
	Delivered      uint64 `json:"delivered"`
	Retrying       int64  `json:"retrying"`
	DeadLettered   uint64 `json:"deadLettered"`
	Dropped        uint64 `json:"dropped"`
	FailedAttempts uint64 `json:"failedAttempts"`
	// Received journal records; Filtered by the filter; Suppressed by the
	// renewal filter.
	Received   uint64 `json:"received"`
	Filtered   uint64 `json:"filtered"`
	Suppressed uint64 `json:"suppressed"`
	// Queued events (waiting, held or in flight), InFlight deliveries,
	// Held disconnects (renewal filter).
	Queued   int64 `json:"queued"`
	InFlight int64 `json:"inFlight"`
	Held     int64 `json:"held"`

	LastDeliveryTime time.Time `json:"lastDeliveryTime,omitzero"`
	LastError        string    `json:"lastError,omitempty"`
	LastErrorTime    time.Time `json:"lastErrorTime,omitzero"`
}

// DeliveryAttempt is one delivery attempt in a subscription's delivery
// log: when, which events, and what came of it (a command's output
// included).
type DeliveryAttempt struct {
	Time     time.Time `json:"time"`
	Duration float64   `json:"durationSeconds"`
	// Attempt is 1 for a first attempt (the batch's most-tried event).
	Attempt int      `json:"attempt"`
	Events  int      `json:"events"`
	EventID string   `json:"eventId"` // the first
	Devices []string `json:"devices"` // the first few, in order
	// OK: delivered; otherwise Outcome names the failure and Final says
	// it was not retried.
	OK      bool   `json:"ok"`
	Final   bool   `json:"final,omitempty"`
	Aborted bool   `json:"aborted,omitempty"`
	Outcome string `json:"outcome,omitempty"`
	Status  int    `json:"httpStatus,omitempty"`
	Error   string `json:"error,omitempty"`
	Output  string `json:"output,omitempty"`
}
