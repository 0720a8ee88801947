package events

import "strings"

// Subscription is a webhook event subscription. Its JSON is the
// "properties" object of an Event Grid event subscription (ARM / az CLI
// shape, reference/iothub-facts.md §1.9) with name alongside, Tether
// options in "tether", and the dead-letter destination kept by Tether:
//
//	{
//	  "name": "ops-alerts",
//	  "destination": {"endpointType": "WebHook", "properties": {
//	    "endpointUrl": "https://ops.example.com/hook",
//	    "maxEventsPerBatch": 1, "preferredBatchSizeInKilobytes": 64}},
//	  "filter": {"includedEventTypes": ["Microsoft.Devices.DeviceDisconnected"],
//	    "subjectBeginsWith": "devices/plant1-", "subjectEndsWith": "",
//	    "isSubjectCaseSensitive": false, "enableAdvancedFilteringOnArrays": false,
//	    "advancedFilters": [{"operatorType": "StringIn", "key": "data.tether.reason",
//	      "values": ["keep-alive", "network"]}]},
//	  "eventDeliverySchema": "EventGridSchema",
//	  "retryPolicy": {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440},
//	  "deadLetterDestination": {"endpointType": "Tether"},
//	  "tether": {"suppressRenewals": true, "renewalGraceSeconds": 120},
//	  "provisioningState": "Succeeded",
//	  "validation": {…}
//	}
//
// provisioningState and validation are the hub's, never the caller's:
// DecodeSubscription drops them (as ARM ignores read-only properties).
type Subscription struct {
	// Name: 3–64 letters, digits and hyphens; unique without regard to
	// case (Event Grid's rule).
	Name                  string                 `json:"name"`
	Destination           Destination            `json:"destination"`
	Filter                Filter                 `json:"filter"`
	EventDeliverySchema   Schema                 `json:"eventDeliverySchema"`
	RetryPolicy           RetryPolicy            `json:"retryPolicy"`
	DeadLetterDestination *DeadLetterDestination `json:"deadLetterDestination,omitempty"`
	Tether                Options                `json:"tether"`

	ProvisioningState ProvisioningState `json:"provisioningState,omitempty"`
	Validation        *ValidationState  `json:"validation,omitempty"`
}

// Destination is where events go: a webhook (Event Grid's), or one of
// Tether's other kinds (destination.go): a NATS JetStream stream, a local
// command, e-mail.
type Destination struct {
	// EndpointType is EndpointWebHook (the default), EndpointStream,
	// EndpointCommand or EndpointEmail.
	EndpointType string                `json:"endpointType"`
	Properties   DestinationProperties `json:"properties"`
}

// EndpointWebHook is Event Grid's webhook destination type.
const EndpointWebHook = "WebHook"

// DestinationProperties of a destination. Each member belongs to the
// kinds named on it; Validate refuses members of another kind.
type DestinationProperties struct {
	// EndpointURL (WebHook) is https, or http when the endpoint is on a
	// loopback address or the operator allows plain http
	// (ValidateOptions).
	EndpointURL string `json:"endpointUrl,omitempty"`
	// MaxEventsPerBatch (WebHook, Stream, Command): 1–5000; default 1 (no
	// batching), 100 for streams.
	MaxEventsPerBatch int `json:"maxEventsPerBatch,omitempty"`
	// PreferredBatchSizeInKilobytes (WebHook, Stream, Command): 1–1024,
	// default 64.
	PreferredBatchSizeInKilobytes int `json:"preferredBatchSizeInKilobytes,omitempty"`

	StreamProperties
	CommandProperties
	EmailProperties
}

// RetryPolicy bounds delivery: whichever limit is reached first ends it.
type RetryPolicy struct {
	MaxDeliveryAttempts      int `json:"maxDeliveryAttempts,omitempty"`      // 1–30, default 30
	EventTimeToLiveInMinutes int `json:"eventTimeToLiveInMinutes,omitempty"` // 1–1440, default 1440
}

// DeadLetterDestination says what happens to an event whose delivery ended
// without success. Event Grid writes such events to a storage blob when a
// destination is set and drops them otherwise; Tether keeps them itself
// (listable, replayable), and does so unless told "None".
type DeadLetterDestination struct {
	EndpointType string `json:"endpointType"` // DeadLetterTether (default) | DeadLetterNone
}

// Dead-letter endpoint types.
const (
	DeadLetterTether = "Tether" // kept by the hub
	DeadLetterNone   = "None"   // dropped, as Event Grid without dead-lettering
)

// Options are Tether's own subscription options.
type Options struct {
	// SuppressRenewals: deliver neither half of a token-renewal pair (a
	// disconnect and the reconnect within RenewalGraceSeconds that renews
	// the token); a disconnect not followed by such a reconnect within the
	// grace period is delivered when the period has passed.
	SuppressRenewals bool `json:"suppressRenewals"`
	// RenewalGraceSeconds: 1–3600, default 120.
	RenewalGraceSeconds int `json:"renewalGraceSeconds,omitempty"`
}

// Defaults and limits (reference/iothub-facts.md §1.9).
const (
	DefaultMaxDeliveryAttempts    = 30
	MaxMaxDeliveryAttempts        = 30
	DefaultEventTTLMinutes        = 1440
	MaxEventTTLMinutes            = 1440
	DefaultMaxEventsPerBatch      = 1
	MaxMaxEventsPerBatch          = 5000
	DefaultPreferredBatchSizeKB   = 64
	MaxPreferredBatchSizeKB       = 1024
	DefaultRenewalGraceSeconds    = 120
	MaxRenewalGraceSeconds        = 3600
	MinNameLength, MaxNameLength  = 3, 64
	MaxAdvancedFilters            = 25
	MaxAdvancedFilterValues       = 25
	MaxAdvancedFilterStringLength = 512
)

// ApplyDefaults fills unset (zero) options with their defaults and puts
// enumerations (schema, endpoint types, event types, operators) in their
// canonical spelling. Zero means "unset" for every numeric option, since 0
// is never valid; negative values are left for Validate to refuse.
func (s *Subscription) ApplyDefaults() {
	s.Destination.applyDefaults(s.Key())
	if s.EventDeliverySchema == "" {
		s.EventDeliverySchema = EventGridSchema
	} else if v, ok := ParseSchema(string(s.EventDeliverySchema)); ok {
		s.EventDeliverySchema = v
	}
	if s.RetryPolicy.MaxDeliveryAttempts == 0 {
		s.RetryPolicy.MaxDeliveryAttempts = DefaultMaxDeliveryAttempts
	}
	if s.RetryPolicy.EventTimeToLiveInMinutes == 0 {
		s.RetryPolicy.EventTimeToLiveInMinutes = DefaultEventTTLMinutes
	}
	if s.DeadLetterDestination == nil {
		s.DeadLetterDestination = &DeadLetterDestination{EndpointType: DeadLetterTether}
	}
	switch {
	case s.DeadLetterDestination.EndpointType == "", strings.EqualFold(s.DeadLetterDestination.EndpointType, DeadLetterTether):
		s.DeadLetterDestination.EndpointType = DeadLetterTether
	case strings.EqualFold(s.DeadLetterDestination.EndpointType, DeadLetterNone):
		s.DeadLetterDestination.EndpointType = DeadLetterNone
	}
	if s.Tether.RenewalGraceSeconds == 0 {
		s.Tether.RenewalGraceSeconds = DefaultRenewalGraceSeconds
	}
	s.Filter.normalize()
}

// Key is the subscription's identity: its name in lower case (names are
// unique without regard to case, as Event Grid's).
func (s Subscription) Key() string { return NameKey(s.Name) }

// NameKey is the identity of a subscription name.
func NameKey(name string) string { return strings.ToLower(name) }

// HeaderName is the name as aeg-subscription-name carries it: upper case.
func (s Subscription) HeaderName() string { return strings.ToUpper(s.Name) }

// DeadLettering reports whether undeliverable events are kept.
func (s Subscription) DeadLettering() bool {
	return s.DeadLetterDestination == nil || s.DeadLetterDestination.EndpointType != DeadLetterNone
}

// Active reports whether the subscription receives events: only after its
// destination was validated and while it is not disabled.
func (s Subscription) Active() bool { return s.ProvisioningState == Succeeded }

// Definition is s without the hub-owned state (provisioningState,
// validation): what a caller may set.
func (s Subscription) Definition() Subscription {
	s.ProvisioningState = ""
	s.Validation = nil
	return s
}
