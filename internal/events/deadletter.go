package events

import (
	"encoding/json"
	"time"
)

// Dead-letter reasons: why delivery of an event ended
// (reference/iothub-facts.md §1.9; Event Grid documents
// MaxDeliveryAttemptsExceeded, the others are Tether's names).
const (
	DeadLetterMaxAttempts = "MaxDeliveryAttemptsExceeded"
	DeadLetterTTL         = "TimeToLiveExceeded"
	// DeadLetterNonRetriable: the endpoint answered 400, 401, 403, 404 or
	// 413, which are not retried.
	DeadLetterNonRetriable = "NonRetriableHttpStatus"
	// DeadLetterNonRetriableError: a destination other than a webhook
	// failed in a way retrying cannot mend (a command that cannot be
	// started, an address the mail server refuses with 5xx).
	DeadLetterNonRetriableError = "NonRetriableError"
)

// DeadLetter is an event whose delivery ended without success, with what
// Event Grid writes beside a dead-lettered event. The delivery engine
// fills it; Tether keeps it (listable and replayable) rather than writing
// it to a storage blob.
type DeadLetter struct {
	Event Event
	// Reason is one of the DeadLetter* reasons.
	Reason string
	// DeliveryAttempts made, LastDeliveryOutcome a short name of the last
	// failure ("NotFound", "TimedOut", "Busy", "ExitStatus3", …),
	// LastHTTPStatus its status (0 when there was no answer, or the
	// destination is not a webhook), LastError the error text.
	DeliveryAttempts        int
	LastDeliveryOutcome     string
	LastHTTPStatus          int
	LastError               string
	PublishTime             time.Time
	LastDeliveryAttemptTime time.Time
}

// deadLetterEventGrid is the Event Grid schema form: the event's members
// followed by the dead-letter members.
type deadLetterEventGrid struct {
	EventGridEvent
	DeadLetterReason        string `json:"deadLetterReason"`
	DeliveryAttempts        int    `json:"deliveryAttempts"`
	LastDeliveryOutcome     string `json:"lastDeliveryOutcome"`
	LastHTTPStatusCode      int    `json:"lastHttpStatusCode,omitempty"`
	LastError               string `json:"lastError,omitempty"`
	PublishTime             string `json:"publishTime"`
	LastDeliveryAttemptTime string `json:"lastDeliveryAttemptTime"`
}

// deadLetterCloudEvent is the CloudEvents form: lower-case names, as
// extension attributes.
type deadLetterCloudEvent struct {
	CloudEvent
	DeadLetterReason        string `json:"deadletterreason"`
	DeliveryAttempts        int    `json:"deliveryattempts"`
	LastDeliveryOutcome     string `json:"lastdeliveryoutcome"`
	LastHTTPStatusCode      int    `json:"lasthttpstatuscode,omitempty"`
	LastError               string `json:"lasterror,omitempty"`
	PublishTime             string `json:"publishtime"`
	LastDeliveryAttemptTime string `json:"lastdeliveryattempttime"`
}

// JSON is d as Event Grid writes a dead-lettered event in schema: the
// original event plus deadLetterReason, deliveryAttempts,
// lastDeliveryOutcome, publishTime, lastDeliveryAttemptTime (Event Grid
// schema) or the same names in lower case (CloudEvents). Tether adds
// lastHttpStatusCode and lastError.
func (d DeadLetter) JSON(schema Schema) json.RawMessage {
	if schema == CloudEventSchemaV1_0 {
		return mustMarshal(deadLetterCloudEvent{
			CloudEvent: d.Event.CloudEvent(), DeadLetterReason: d.Reason, DeliveryAttempts: d.DeliveryAttempts,
			LastDeliveryOutcome: d.LastDeliveryOutcome, LastHTTPStatusCode: d.LastHTTPStatus, LastError: d.LastError,
			PublishTime: FormatTime(d.PublishTime), LastDeliveryAttemptTime: FormatTime(d.LastDeliveryAttemptTime),
		})
	}
	return mustMarshal(deadLetterEventGrid{
		EventGridEvent: d.Event.EventGrid(), DeadLetterReason: d.Reason, DeliveryAttempts: d.DeliveryAttempts,
		LastDeliveryOutcome: d.LastDeliveryOutcome, LastHTTPStatusCode: d.LastHTTPStatus, LastError: d.LastError,
		PublishTime: FormatTime(d.PublishTime), LastDeliveryAttemptTime: FormatTime(d.LastDeliveryAttemptTime),
	})
}
